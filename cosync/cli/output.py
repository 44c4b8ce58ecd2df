"""Output of operator commands: aligned tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator

from cosync.cli import CommandError


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """Turn a service's ApiError into a CommandError that carries its detailed reason."""
    from cosync.errors import ApiError

    try:
        yield
    except ApiError as error:
        raise CommandError(error.detail or error.error.message) from None


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print `rows` as columns separated by two spaces, with a header; absent values print `-`."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[index]) for line in cells)]) for index, column in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # One row per record: a line break in a value would split it.
    return " ".join(text.split())
