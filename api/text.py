"""What a one-line text field (a name, a keyword) may hold: the rule, and the same rule as a JSON Schema pattern.

No control characters, and at least one character that is not blank. The pattern spells out the
blank characters Python's str.strip() removes, so the documented schema and the check agree on
every string (ECMAScript's \\s and Python's do not).
"""

from __future__ import annotations

import re

CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
BLANK = "\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"  # with the controls: what str.strip() removes
PATTERN = f"^[^{CONTROL}]*[^{CONTROL}{BLANK}][^{CONTROL}]*$"
_LINE = re.compile(PATTERN)


def is_line(value: str, longest: int) -> bool:
    """1 to `longest` characters of one line of text, not all blank."""
    return 0 < len(value) <= longest and _LINE.fullmatch(value) is not None
