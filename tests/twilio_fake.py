"""A local stand-in for Twilio's Messages API, for the real `twilio` client in tests.

It accepts `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth and a
form body (`To`, `From`, `Body`), records each message, and responds as Twilio does: HTTP 201
with the message resource, or the error set in `reject` (HTTP 400 with Twilio's
`{"code", "message", "more_info", "status"}`). Wrong credentials get HTTP 401 and code 20003.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from local_http import serving_fake
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/([A-Za-z0-9]+)/Messages\.json")


@dataclass
class SentMessage:
    account_sid: str
    to: str
    sender: str
    body: str


@dataclass
class FakeTwilio:
    url: str
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-auth-token"
    messages: list[SentMessage] = field(default_factory=list)
    # Twilio's error for the next requests, e.g. {"code": 21211, "message": "..."}; None sends.
    reject: dict | None = None

    def texts_to(self, phone: str) -> list[str]:
        return [message.body for message in self.messages if message.to == phone]


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (name fixed by http.server)
            length = int(self.headers.get("Content-Length", "0"))
            form = {name: values[0] for name, values in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
            match = MESSAGES_PATH.fullmatch(self.path)
            if match is None:
                return self._answer(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
            expected = "Basic " + base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
            if match.group(1) != fake.account_sid or self.headers.get("Authorization") != expected:
                return self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            if fake.reject is not None:
                return self._answer(400, {**fake.reject, "more_info": "https://example.invalid/errors", "status": 400})
            message = SentMessage(match.group(1), form.get("To", ""), form.get("From", ""), form.get("Body", ""))
            fake.messages.append(message)
            self._answer(201, {
                "sid": "SM" + uuid.uuid4().hex,
                "account_sid": message.account_sid,
                "to": message.to,
                "from": message.sender,
                "body": message.body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
            })

        def _answer(self, status: int, document: dict) -> None:
            payload = json.dumps(document).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass  # silence the per-request access log

    return Handler


@contextlib.contextmanager
def running_fake_twilio() -> Iterator[FakeTwilio]:
    """Serve a FakeTwilio on a free 127.0.0.1 port for the duration of the block."""
    with serving_fake(lambda url: FakeTwilio(url=url), _handler_for) as fake:
        yield fake
