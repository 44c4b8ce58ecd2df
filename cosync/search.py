"""Substring search and paging for the operator's list routes.

Search text is matched literally: every ASCII punctuation character is escaped before the text
becomes a regular expression, so `.*`, `(` or `[` match themselves and cannot make the server
backtrack. A backslash before punctuation is a literal in both MongoDB's PCRE and FerretDB's
Go regular expressions; other characters need no escape in either.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Mapping

from pymongo.collection import Collection

from cosync import errors
from cosync.errors import ApiError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_SEARCH_LENGTH = 254

_PUNCTUATION = frozenset(string.punctuation)


def literal_pattern(text: str) -> str:
    """Return a regular expression that matches `text` literally, anywhere in a value."""
    return "".join("\\" + character if character in _PUNCTUATION else character for character in text)


def parse_search_text(value: Any) -> str | None:
    """Return the search text of a request, or None to match everything."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, "search value must be a string")
    if len(value) > MAX_SEARCH_LENGTH or any(ord(character) < 32 for character in value):
        raise ApiError(errors.INVALID_DATA, "search value is too long or contains control characters")
    return value


@dataclass(frozen=True)
class PageRequest:
    """A page of a sorted list: `number` counts from 0, `size` items per page."""

    number: int = 0
    size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    request: PageRequest


def _integer(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = str(raw).strip()
    if not text.isascii() or not text.lstrip("-").isdigit():
        raise ApiError(errors.INVALID_DATA, f"{name} must be an integer")
    return int(text)


def parse_page(params: Mapping[str, Any]) -> PageRequest:
    """Read `offset` (the page number, from 0) and `limit` (page size, 1 to 100, default 25).

    CosyncJWT names the page number `offset` in its paged operator routes; the same name is
    kept here.
    """
    number = _integer(params, "offset", 0)
    size = _integer(params, "limit", DEFAULT_PAGE_SIZE)
    if number < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(errors.INVALID_DATA, f"offset (page number) must be 0 or more and limit (page size) 1 to {MAX_PAGE_SIZE}")
    return PageRequest(number=number, size=size)


def find_page(
    collection: Collection,
    query: dict[str, Any],
    sort: list[tuple[str, int]],
    page: PageRequest,
    projection: dict[str, int] | None = None,
) -> Page:
    """Return one page of the documents matching `query` and the total number of matches."""
    total = collection.count_documents(query)
    cursor = collection.find(query, projection).sort(sort).skip(page.number * page.size).limit(page.size)
    return Page(items=list(cursor), total=total, request=page)
