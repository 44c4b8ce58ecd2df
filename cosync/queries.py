"""Building blocks of the operator's list queries: time filters and JSON views of documents."""

from __future__ import annotations

import datetime
from typing import Any

from bson import ObjectId

from cosync import errors
from cosync.dates import iso
from cosync.errors import ApiError


def parse_time(value: Any, name: str) -> datetime.datetime | None:
    """Parse an ISO 8601 date or date-time; one without a zone is UTC. Empty gives None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, f"{name} must be an ISO 8601 date")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(errors.INVALID_DATA, f"{name} is not an ISO 8601 date: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def document_view(document: dict[str, Any], hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Return a stored document as JSON-ready values: `_id` as hex text, dates in ISO 8601,
    without `__v` and the `hidden` fields."""
    view = {}
    for key, value in document.items():
        if key == "__v" or key in hidden:
            continue
        view[key] = str(value) if isinstance(value, ObjectId) else iso(value)
    return view
