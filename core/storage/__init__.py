"""Storage: tortoise-orm on SQLite (default) or PostgreSQL, migrations, and secrets sealed at rest.

Transports do not use this package directly: they call `runtime.services` (core/services.py).
How to use those services, and how the database is set up: core/storage/README.md.
"""
