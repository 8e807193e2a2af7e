"""Block Kit builders: plain dicts, one module per surface, all checked by `limits`."""
