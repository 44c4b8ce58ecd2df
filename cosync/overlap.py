"""Run two independent steps of a request at the same time.

A step that waits for MongoDB runs on a small shared thread pool while the request's own
thread does the other step, so a login waits for one round trip where it would wait for two.
Python releases the GIL while a socket waits, and each pymongo operation takes a connection of
its own from the client's pool.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

A = TypeVar("A")
B = TypeVar("B")

# Each request uses at most one pool thread at a time. When more requests than this run in one
# worker, the extra ones wait for a thread, which costs time but nothing else.
POOL_THREADS = 8

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="cosync-overlap")
        return _pool


def both(background: Callable[[], A], foreground: Callable[[], B]) -> tuple[A, B]:
    """Run `background` on the pool and `foreground` here; return both results.

    Both steps always finish before this returns. An exception of `foreground` wins over one of
    `background`, so callers put the step whose error the client must see (a rate limit, say)
    in the foreground.
    """
    future = _executor().submit(background)
    try:
        result = foreground()
    except BaseException:
        # Wait, so the background step never outlives the request; its own error is dropped.
        future.exception()
        raise
    return future.result(), result
