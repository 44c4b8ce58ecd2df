"""The development server (`cosync.devserver`) over real HTTP on 127.0.0.1: route matching,
CORS preflight, unknown routes, and failures inside and outside the functions."""

from __future__ import annotations

import json
import re
import socket
from typing import Iterator

import azure.functions as func
import pytest
import requests

from conftest import reset_caches, serve_in_thread
from flows import digest, error

ROUTE_NOT_FOUND = error(404, "route not found")
INTERNAL_SERVER_ERROR = error(500, "internal server error")


# Route matching on the real function app


@pytest.mark.parametrize(
    "path",
    [
        "/api/appuser/getApplication",
        "//api/appuser/getApplication",
        "/api//appuser///getApplication",
        "/api/AppUser/GetApplication",
        "/API/APPUSER/GETAPPLICATION",
        "/api/appuser/getApplication/",
    ],
)
def test_route_matching_variants(api, new_app, path):
    app = new_app()

    response = api.get(path, headers={"app-token": app["appToken"]})

    assert response.status_code == 200
    assert response.json()["name"] == app["name"]


def test_query_string_kept_with_double_slash(api, new_app):
    app = new_app()

    response = api.get("//api/appuser/getApplication", params={"appToken": app["appToken"]})

    assert response.status_code == 200
    assert response.json()["name"] == app["name"]


@pytest.mark.parametrize(
    "path",
    ["/api/appuser/nothing", "/api/appuser", "/api/appuser/getApplicationX", "/appuser/getApplication", "/"],
)
def test_unknown_route_is_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json() == ROUTE_NOT_FOUND
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/appuser/login"),
        ("GET", "/api/appuser/signup"),
        ("POST", "/api/appuser/getApplication"),
        ("DELETE", "/api/appuser/getUser"),
    ],
)
def test_wrong_method_is_404(api, method, path):
    response = api.session.request(method, api.base_url + path, timeout=30)

    assert response.status_code == 404
    assert response.json() == ROUTE_NOT_FOUND


def test_options_preflight(api):
    response = api.session.options(
        api.base_url + "/api/appuser/login",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "app-token, content-type",
        },
        timeout=30,
    )

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    allowed_headers = [name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")]
    for name in ("content-type", "app-token", "access-token", "server-secret"):
        assert name in allowed_headers
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_responses_carry_cors_headers(api, new_app):
    app = new_app()

    success = api.get("/api/appuser/getApplication", headers={"app-token": app["appToken"]})
    failure = api.get("/api/appuser/getApplication", headers={"app-token": "garbage"})

    assert success.headers["Access-Control-Allow-Origin"] == "*"
    assert failure.status_code == 400
    assert failure.headers["Access-Control-Allow-Origin"] == "*"


def test_signup_acknowledgement_is_true(api, new_app):
    app = new_app()

    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        json={"handle": "ack@example.com", "password": digest("pw")},
    )

    assert response.status_code == 200
    assert response.content == b"true"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Content-Length"] == "4"


def test_unreachable_database_gives_code_500(api, new_app, environment, monkeypatch):
    app = new_app()
    headers = {"app-token": app["appToken"]}
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/")
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "200")
    reset_caches()

    failed = api.get("/api/appuser/getApplication", headers=headers)

    assert failed.status_code == 400
    assert failed.json() == INTERNAL_SERVER_ERROR

    monkeypatch.setenv("MONGODB_URI", environment["MONGODB_URI"])
    monkeypatch.delenv("MONGODB_TIMEOUT_MS")
    reset_caches()

    recovered = api.get("/api/appuser/getApplication", headers=headers)

    assert recovered.status_code == 200
    assert recovered.json()["name"] == app["name"]


# A function app of our own, for failures outside `respond`

probe_app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@probe_app.function_name("raises")
@probe_app.route(route="probe/raises", methods=["GET"])
def raises(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@probe_app.function_name("echo")
@probe_app.route(route="probe/items/{itemId}", methods=["POST"])
def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {
        "method": req.method,
        "itemId": req.route_params.get("itemId"),
        "query": dict(req.params),
        "body": req.get_body().decode("utf-8"),
        "forwardedFor": req.headers.get("x-forwarded-for"),
        "invocationId": context.invocation_id,
        "functionName": context.function_name,
    }
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json", charset="utf-8")


@pytest.fixture(scope="module")
def probe_server() -> Iterator[str]:
    yield from serve_in_thread(probe_app)


def test_function_raising_gives_500(probe_server):
    failed = requests.get(probe_server + "/api/probe/raises", timeout=10)
    next_request = requests.post(probe_server + "/api/probe/items/7", data=b"after", timeout=10)

    assert failed.status_code == 500
    assert failed.json() == INTERNAL_SERVER_ERROR
    assert next_request.status_code == 201


def test_request_reaches_function_intact(probe_server):
    response = requests.post(
        probe_server + "/api/Probe/Items/abc-1/",
        params={"q": "a b", "empty": ""},
        data=b"payload",
        timeout=10,
    )

    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["method"] == "POST"
    assert body["itemId"] == "abc-1"
    assert body["query"] == {"q": "a b", "empty": ""}
    assert body["body"] == "payload"
    assert body["forwardedFor"].startswith("127.0.0.1:")
    assert body["functionName"] == "echo"
    assert len(body["invocationId"]) == 36


def test_forwarded_for_header_gets_the_peer_appended(probe_server):
    """Like Azure's front ends: a client-sent entry is kept, and the real peer comes last."""
    response = requests.post(
        probe_server + "/api/probe/items/1", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )

    assert re.fullmatch(r"203\.0\.113\.9, 127\.0\.0\.1:\d+", response.json()["forwardedFor"])


def test_route_parameter_never_spans_segments(probe_server):
    response = requests.post(probe_server + "/api/probe/items/a/b", timeout=10)

    assert response.status_code == 404
    assert response.json() == ROUTE_NOT_FOUND


def send_raw_request(base_url: str, request: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_declared_body_over_10_mib_rejected(probe_server):
    request = (
        b"POST /api/probe/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    )

    received = send_raw_request(probe_server, request)

    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert rest.split(b"\r\n\r\n", 1)[1] == b'{"code":602,"message":"invalid data"}'


@pytest.mark.parametrize("length", [b"ten", b"-5", b"1e3"])
def test_invalid_content_length_rejected(probe_server, length):
    request = b"POST /api/probe/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + length + b"\r\n\r\n"

    received = send_raw_request(probe_server, request)

    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert rest.split(b"\r\n\r\n", 1)[1] == b'{"code":602,"message":"invalid data"}'



def exchange_until_closed(base_url: str, request: bytes, shut_write: bool = False) -> bytes:
    """Send a raw request and read until the server closes the connection."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        if shut_write:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_chunked_body_is_decoded(api, new_app):
    app = new_app()
    body = json.dumps({"handle": "chunked@example.com", "password": digest("pw")}).encode()
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    request = (
        b"POST /api/appuser/signup HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + f"app-token: {app['appToken']}\r\n\r\n".encode()
        + chunks
    )

    response = exchange_until_closed(api.base_url, request)

    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\ntrue")


def test_truncated_body_is_rejected(api, new_app):
    app = new_app()
    request = (
        b"POST /api/appuser/signup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"app-token: {app['appToken']}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"handle": "x'
    )

    response = exchange_until_closed(api.base_url, request, shut_write=True)

    assert response.startswith(b"HTTP/1.1 400 ")
    assert response.endswith(b'{"code":602,"message":"invalid data"}')


def test_head_request_gets_json_404(api):
    response = api.session.head(api.base_url + "/api/appuser/getApplication", timeout=10)

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
