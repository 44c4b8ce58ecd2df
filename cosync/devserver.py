"""A development HTTP server that calls the functions registered on the FunctionApp.

It replaces `func start` where Azure Functions Core Tools is not installed. Routes are matched
as the Functions host does: prefix `/api`, case-insensitive, one trailing slash allowed.
Repeated slashes are collapsed, because the Swift SDK sends `//api/...` for two routes. Unknown
routes get a JSON 404, and one line is logged per request. It is not a production host.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
import time
import uuid
import weakref
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

log = logging.getLogger("cosync.devserver")

ROUTE_PREFIX = "/api"
MAX_REQUEST_BYTES = 10 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Origin, X-Requested-With, Content-Type, Accept, app-token, access-token, server-secret",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    function: Callable[..., Any]
    wants_context: bool


@dataclass(frozen=True)
class InvocationContext:
    """The parts of `azure.functions.Context` that our functions read."""

    invocation_id: str
    function_name: str
    function_directory: str = ""


def _route_pattern(template: str) -> re.Pattern[str]:
    """Compile a Functions route template (`app/appId/{appId}`) into a regular expression."""
    parts = []
    for segment in template.strip("/").split("/"):
        match = re.fullmatch(r"\{(\w+)(?::\w+)?(\?)?\}", segment)
        if match:
            parts.append(f"(?P<{match.group(1)}>[^/]+)" + ("?" if match.group(2) else ""))
        else:
            parts.append(re.escape(segment))
    return re.compile(f"{ROUTE_PREFIX}/" + "/".join(parts) + "/?", re.IGNORECASE)


# FunctionApp.get_functions() raises on its second call (azure-functions 1.26 keeps the names
# it has validated), so each app's routes are collected once and shared.
_collected: "weakref.WeakKeyDictionary[func.FunctionApp, list[Route]]" = weakref.WeakKeyDictionary()


def collect_routes(app: func.FunctionApp) -> list[Route]:
    if app not in _collected:
        _collected[app] = _build_routes(app)
    return _collected[app]


def _build_routes(app: func.FunctionApp) -> list[Route]:
    routes = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger is None or trigger.get_dict_repr().get("type") != "httpTrigger":
            continue
        binding = trigger.get_dict_repr()
        methods = frozenset(str(getattr(method, "value", method)).upper() for method in binding.get("methods") or [])
        user_function = function.get_user_function()
        routes.append(
            Route(
                name=function.get_function_name(),
                pattern=_route_pattern(binding.get("route") or function.get_function_name()),
                methods=methods or frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"}),
                function=user_function,
                wants_context="context" in inspect.signature(user_function).parameters,
            )
        )
    return routes


def _content_length(value: str | None) -> int | None:
    """Return the declared body length, 0 when absent, or None when it is not a decimal count."""
    text = (value or "").strip()
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def normalise_path(path: str) -> str:
    return re.sub(r"/{2,}", "/", path) or "/"


class BodyError(Exception):
    """The request body is malformed or too large; the message is the log detail."""


class FunctionRequestHandler(BaseHTTPRequestHandler):
    server: "FunctionHttpServer"
    protocol_version = "HTTP/1.1"
    # Seconds a connection may stay silent; a client that promises more body than it sends
    # would otherwise hold its thread for ever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are logged once, with their status and duration, by `_dispatch`.
        return None

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._send(204, {**CORS_HEADERS, "Content-Length": "0"}, b"")

    def _dispatch(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = normalise_path(split.path)
        try:
            body = self._read_body()
        except BodyError as error:
            status = 413 if "exceeds" in str(error) else 400
            self._send_json(status, b'{"code":602,"message":"invalid data"}')
            self.close_connection = True
            log.info("rejected request body for %s: %s", path, error)
            self._log(path, status, started)
            return

        route, route_params = self._match(path)
        if route is None:
            self._send_json(404, b'{"code":404,"message":"route not found"}')
            self._log(path, 404, started)
            return

        headers = {name.lower(): value for name, value in self.headers.items()}
        # Like Azure's front ends, append the peer address, so a client cannot choose the last entry.
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {peer}" if forwarded else peer
        request = func.HttpRequest(
            method=self.command,
            url=f"http://{self.headers.get('Host', 'localhost')}{path}" + (f"?{split.query}" if split.query else ""),
            headers=headers,
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            route_params=route_params,
            body=body,
        )
        context = InvocationContext(invocation_id=str(uuid.uuid4()), function_name=route.name)
        try:
            response = route.function(request, context) if route.wants_context else route.function(request)
        except Exception:
            log.exception("function %s raised [invocation %s]", route.name, context.invocation_id)
            self._send_json(500, b'{"code":500,"message":"internal server error"}')
            self._log(path, 500, started)
            return
        self._send_response(response)
        self._log(path, response.status_code, started)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
            return self._read_chunked()
        length = _content_length(self.headers.get("Content-Length"))
        if length is None:
            raise BodyError("invalid Content-Length")
        if length > MAX_REQUEST_BYTES:
            raise BodyError(f"Content-Length {length} exceeds {MAX_REQUEST_BYTES} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise BodyError("connection closed before the whole body arrived")
        return body

    def _read_chunked(self) -> bytes:
        """Read a `Transfer-Encoding: chunked` body (RFC 9112 §7.1), ignoring extensions and trailers."""
        chunks = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_line):
                raise BodyError("invalid chunk size")
            size = int(size_line, 16)
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BYTES:
                raise BodyError(f"chunked body exceeds {MAX_REQUEST_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def _match(self, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.server.routes:
            match = route.pattern.fullmatch(path)
            if match and self.command in route.methods:
                return route, {key: value for key, value in match.groupdict().items() if value is not None}
        return None, {}

    def _send_response(self, response: func.HttpResponse) -> None:
        body = response.get_body() or b""
        headers = dict(response.headers)
        if response.mimetype:
            charset = f"; charset={response.charset}" if response.charset else ""
            headers["Content-Type"] = f"{response.mimetype}{charset}"
        headers["Content-Length"] = str(len(body))
        self._send(response.status_code, {**CORS_HEADERS, **headers}, body)

    def _send_json(self, status: int, body: bytes) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body))}
        self._send(status, {**CORS_HEADERS, **headers}, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.info("client closed the connection before the response was sent")
            self.close_connection = True

    def _log(self, path: str, status: int, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s %s %d %.1f ms", self.command, path, status, elapsed_ms)


class FunctionHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A timed-out or reset connection is the client's doing; log one line, no traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (TimeoutError, ConnectionError)):
            log.info("connection from %s ended: %s", client_address[0], error)
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], app: func.FunctionApp) -> None:
        self.routes = collect_routes(app)
        super().__init__(address, FunctionRequestHandler)


def serve(app: func.FunctionApp, host: str, port: int) -> None:
    server = FunctionHttpServer((host, port), app)
    log.info("serving %d functions on http://%s:%d%s", len(server.routes), host, server.server_address[1], ROUTE_PREFIX)
    try:
        server.serve_forever()
    finally:
        server.server_close()
