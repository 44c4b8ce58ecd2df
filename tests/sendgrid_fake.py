"""A local stand-in for the SendGrid v3 API, for the real `sendgrid` client in tests."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from local_server import local_http_server


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class FakeSendGrid:
    """A local stand-in for api.sendgrid.com that records requests and returns a set reply."""

    url: str
    requests: list[RecordedRequest] = field(default_factory=list)
    status: int = 202
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"X-Message-Id": "test-message-id"})
    delay_seconds: float = 0.0


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (name fixed by http.server)
            length = int(self.headers.get("Content-Length", "0"))
            fake.requests.append(
                RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length),
                )
            )
            if fake.delay_seconds:
                time.sleep(fake.delay_seconds)
            self.send_response(fake.status)
            for name, value in fake.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(fake.body)))
            self.end_headers()
            self.wfile.write(fake.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # silence the per-request access log

    return Handler


@contextlib.contextmanager
def running_fake_sendgrid() -> Iterator[FakeSendGrid]:
    """Serve a FakeSendGrid on a free 127.0.0.1 port for the duration of the block."""
    with local_http_server() as server:
        fake = FakeSendGrid(url=f"http://127.0.0.1:{server.server_port}")
        server.RequestHandlerClass = _handler_for(fake)
        yield fake
