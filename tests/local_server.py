"""The HTTP server that the local fakes of outside services (SendGrid, Apple, Google) run on."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def local_http_server() -> Iterator[ThreadingHTTPServer]:
    """Serve on a free 127.0.0.1 port in a thread for the duration of the block.

    The caller sets `RequestHandlerClass` before it hands out the URL.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
