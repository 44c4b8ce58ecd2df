"""Reading values in the shapes the reference CosyncJWT server stores them.

CosyncJWT (Mongoose 5) stores codes as BSON numbers, which drivers and imports may hand back
as int, double or a numeric string, and dates as BSON dates cut to whole seconds. Our writes
always use our own formats; these helpers only read.
"""

from __future__ import annotations

from typing import Any


def numeric_code(value: Any) -> str | None:
    """Return a stored verification code as canonical decimal text, or None if it is not one.

    Accepts an int, an integral double (`654321.0`) or a string of digits; booleans, fractions
    and anything else return None, so they never match a code.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and value >= 0 else None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return str(int(value.strip()))
    return None
