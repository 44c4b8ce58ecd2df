"""Dotted paths into nested dicts (`"user_data.name"`), as app metadata fields name them."""

from __future__ import annotations

from typing import Any


def get_path(data: dict[str, Any], path: str) -> Any:
    """Return the value at `path`, or None when any step is missing or not an object."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at `path`, replacing any non-object value met on the way."""
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = value
