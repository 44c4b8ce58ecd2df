"""A per-process cache of app documents and e-mail templates, with a time-to-live.

Nearly every end-user request needs its app document, and the mail routes need a template, so
a warm worker keeps both for `APP_CACHE_SECONDS` (default 30) instead of reading them from
MongoDB each time. A change made by another worker or by the CLI is seen once the entry
expires. A change made through this process (settings, status, key rotation, templates,
import, deletion) calls `forget`, so this worker reads the new value on its next request.

Entries are deep copies, so a caller that changes the returned document does not change the
cache. Apps that do not exist are not cached, so a new app is usable at once.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, TypeVar

from cosync.settings import get_settings

Value = TypeVar("Value")

# A worker serves few apps; the bound only stops unbounded growth from tokens of many apps.
MAX_ENTRIES = 1024

# The time source of the time-to-live, in seconds; tests move it forward.
clock = time.monotonic
_lock = threading.Lock()
_entries: dict[tuple[str, Any], tuple[float, Any]] = {}


def cached(app_id: str, key: Any, load: Callable[[], Value | None]) -> Value | None:
    """Return the value stored under (`app_id`, `key`), calling `load` when it is absent or expired.

    A `load` result of None is returned but not stored.
    """
    ttl = get_settings().app_cache_seconds
    if ttl <= 0:
        return load()
    now = clock()
    with _lock:
        entry = _entries.get((app_id, key))
    if entry is not None and now - entry[0] < ttl:
        return copy.deepcopy(entry[1])

    value = load()
    if value is None:
        return None
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[(app_id, key)] = (now, copy.deepcopy(value))
    return value


def forget(app_id: str | None = None) -> None:
    """Drop every entry of `app_id`, or of every app when it is None."""
    with _lock:
        if app_id is None:
            _entries.clear()
            return
        for entry_key in [entry_key for entry_key in _entries if entry_key[0] == app_id]:
            del _entries[entry_key]
