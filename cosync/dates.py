"""Current time and the date format of the wire: all dates are UTC."""

from __future__ import annotations

import datetime
from typing import Any


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(value: Any) -> Any:
    """Format a datetime as JavaScript's `toISOString` does (milliseconds, `Z`); return any
    other value unchanged."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value
