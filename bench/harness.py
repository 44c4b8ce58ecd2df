"""Call the registered functions in-process and count the MongoDB commands each call sends.

`FunctionClient` builds an `azure.functions.HttpRequest` and calls the function object that
the FunctionApp registered for a route, as the Functions host does, without HTTP in between.
`CommandCounter` is a pymongo `CommandListener`: register it before the first `MongoClient`
is created, then count inside `with counter.counting():`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import azure.functions as func
from pymongo import monitoring

from cosync import audit
from cosync.devserver import InvocationContext, Route, collect_routes
from cosync.mail import read_outbox



def digest(password: str) -> str:
    """Return the MD5 hex of a password, as every Cosync SDK sends it."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def latest_code(to: str) -> str:
    """Return the six-digit code of the newest outbox message sent to `to`."""
    messages = [message for message in read_outbox() if message["to"] == to]
    match = re.search(r"<strong>(\d{6})</strong>", messages[-1]["html"]) if messages else None
    if match is None:
        raise RuntimeError(f"no message with a code to {to} in the outbox")
    return match.group(1)


@dataclass
class Commands:
    """The commands of one counted block: those sent while it ran (by its thread or by the
    overlap pool), and the audit records that the background writer sent after it."""

    request: list[str]
    after_response: list[str]


class CommandCounter(monitoring.CommandListener):
    """Record the commands started while counting, as "<command> <collection>"."""

    def __init__(self) -> None:
        self.active = False
        self.commands = Commands([], [])

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active:
            target = event.command.get(event.command_name)
            name = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
            by_writer = threading.current_thread().name == audit.WRITER_THREAD_NAME
            (self.commands.after_response if by_writer else self.commands.request).append(name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def counting(self) -> Iterator[Commands]:
        """Collect the commands of the block, and the audit records it queued, into the
        yielded `Commands`."""
        audit.flush()
        self.commands = Commands([], [])
        self.active = True
        try:
            yield self.commands
        finally:
            audit.flush()
            self.active = False


@dataclass
class Reply:
    status: int
    body: Any


class FunctionClient:
    """Call the FunctionApp's HTTP functions by their function name."""

    def __init__(self, app: func.FunctionApp) -> None:
        self.routes: dict[str, Route] = {route.name: route for route in collect_routes(app)}

    def request(
        self,
        name: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
    ) -> func.HttpRequest:
        """Build the request for function `name`; POST with a JSON body, GET without one."""
        route = self.routes[name]
        method = "POST" if "POST" in route.methods else "GET"
        # Each request comes from its own documentation address (RFC 5737), so the per-address
        # limits do not stop a long run.
        address = f"203.0.113.{random.randrange(1, 255)}:{random.randrange(1024, 65536)}"
        all_headers = {"x-forwarded-for": address, **(headers or {})}
        if body is not None:
            all_headers["content-type"] = "application/json"
        return func.HttpRequest(
            method=method,
            url=f"http://127.0.0.1:7071/api/{name}",
            headers=all_headers,
            params=params or {},
            route_params=route_params or {},
            body=json.dumps(body).encode("utf-8") if body is not None else b"",
        )

    def send(self, name: str, request: func.HttpRequest) -> Reply:
        """Call the function of route `name` with a request built by `request`."""
        route = self.routes[name]
        context = InvocationContext(invocation_id=str(uuid.uuid4()), function_name=name)
        response = route.function(request, context) if route.wants_context else route.function(request)
        text = (response.get_body() or b"").decode("utf-8")
        try:
            return Reply(response.status_code, json.loads(text))
        except ValueError:
            return Reply(response.status_code, text)

    def call(self, name: str, body: dict[str, Any] | None = None, **options: Any) -> Reply:
        return self.send(name, self.request(name, body, **options))
