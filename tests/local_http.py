"""Serving a fake HTTP API on a free 127.0.0.1 port for the duration of a test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

Fake = TypeVar("Fake")


@contextlib.contextmanager
def serving_fake(
    make_fake: Callable[[str], Fake], handler_for: Callable[[Fake], type[BaseHTTPRequestHandler]]
) -> Iterator[Fake]:
    """Create the fake with its base URL, serve `handler_for(fake)`, and stop at the block's end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    fake = make_fake(f"http://127.0.0.1:{server.server_port}")
    server.RequestHandlerClass = handler_for(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
