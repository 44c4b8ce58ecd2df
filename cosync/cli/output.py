"""Output of operator commands: aligned tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Iterator, TypeVar

from cosync.cli import CommandError

Result = TypeVar("Result")


@contextlib.contextmanager
def service_errors() -> Iterator[None]:
    """Turn a service's ApiError, or a failed database request, into a one-line CommandError."""
    from pymongo.errors import PyMongoError

    from cosync.errors import ApiError

    try:
        yield
    except ApiError as error:
        raise CommandError(error.detail or error.error.message) from None
    except PyMongoError as error:
        raise CommandError(f"database request failed: {str(error).splitlines()[0]}") from None


def run_service(work: Callable[[], Result]) -> Result:
    """Call `work` under `service_errors` and return its result."""
    with service_errors():
        return work()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(rows: list[dict[str, Any]], columns: list[str], max_cell_chars: int | None = None) -> None:
    """Print `rows` as columns separated by two spaces, with a header; absent values print `-`.

    Values longer than `max_cell_chars` are cut and end in "...".
    """
    cells = [[_cell(row.get(column), max_cell_chars) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[index]) for line in cells)]) for index, column in enumerate(columns)]
    for line in [columns, *cells]:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


def print_fields(mapping: dict[str, Any]) -> None:
    """Print one record as `name  value` lines, values in full."""
    width = max((len(name) for name in mapping), default=0)
    for name, value in mapping.items():
        print(f"{name.ljust(width)}  {_cell(value)}")


def _cell(value: Any, max_chars: int | None = None) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    # One row per record: a line break in a value would split it.
    text = " ".join(text.split())
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text


def parse_assignments(items: list[str]) -> dict[str, str]:
    """Turn `FIELD=VALUE` arguments into a dict of strings, as a form body would carry them."""
    values = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise CommandError(f"expected FIELD=VALUE, got {item!r}")
        values[name] = value
    return values
