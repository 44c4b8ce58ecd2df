"""Building blocks of the operator's list and search queries: literal patterns, pages, views."""

from __future__ import annotations

import datetime
import re
import string
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from cosync import errors
from cosync.dates import iso
from cosync.errors import ApiError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_SEARCH_LENGTH = 200

# Every ASCII punctuation character gets a backslash. Both PCRE (MongoDB) and RE2 (FerretDB)
# read a backslash before punctuation as that literal character, but RE2 rejects one before a
# space or a letter, which `re.escape` can produce.
_PUNCTUATION = frozenset(string.punctuation)


def literal_pattern(text: str) -> str:
    """Return a regular expression that matches `text` literally, on MongoDB and FerretDB."""
    return "".join("\\" + character if character in _PUNCTUATION else character for character in text)


def search_text(value: Any, name: str) -> str:
    """Return a search term: a string of at most MAX_SEARCH_LENGTH characters, no control characters."""
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, f"{name} must be a string")
    if len(value) > MAX_SEARCH_LENGTH or any(ord(character) < 32 for character in value):
        raise ApiError(errors.INVALID_DATA, f"{name} is longer than {MAX_SEARCH_LENGTH} characters or has control characters")
    return value


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def skip(self) -> int:
        return self.number * self.size


def _whole_number(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ApiError(errors.INVALID_DATA, f"{name} must be a whole number")
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        return int(value.strip())
    if isinstance(value, int):
        return value
    raise ApiError(errors.INVALID_DATA, f"{name} must be a whole number, got {value!r}")


def parse_page(offset: Any, limit: Any, default_size: int = DEFAULT_PAGE_SIZE) -> Page:
    """Return the page that `offset` (a page number from 0) and `limit` (page size) name.

    The page size is 1 to MAX_PAGE_SIZE; anything else, or a negative number, is INVALID_DATA.
    """
    number = _whole_number(offset, "offset")
    size = _whole_number(limit, "limit")
    if number is not None and number < 0:
        raise ApiError(errors.INVALID_DATA, "offset must not be negative")
    if size is not None and not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(errors.INVALID_DATA, f"limit must be between 1 and {MAX_PAGE_SIZE}")
    return Page(number=number or 0, size=size or default_size)


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
