"""Run two independent steps of a request at the same time.

A step that waits for MongoDB runs on a small shared thread pool while the request's own
thread does the other step, so a login pays one round trip where it would pay two. pymongo
releases the GIL while it waits for the network, and its connection pool gives each thread
its own connection.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

A = TypeVar("A")
B = TypeVar("B")

# Each request uses at most one pool thread at a time; more requests than this in one worker
# queue for a thread and run one step after the other.
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
