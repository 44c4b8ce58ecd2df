"""The client address used by rate limits, and token revocation by `tokenVersion`."""

from __future__ import annotations

import azure.functions as func
import pytest

from cosync.auth import ANONYMOUS
from cosync.http import Call, client_address_of
from cosync.services.users import revoke_tokens
from flows import error, register_user


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.7:51234", "203.0.113.7"),
        ("203.0.113.7", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("", ""),
    ],
)
def test_client_address_strips_the_port(entry, address):
    assert client_address_of(entry) == address


def _call(headers: dict[str, str]) -> Call:
    request = func.HttpRequest(method="POST", url="http://localhost/api/appuser/login", headers=headers, body=b"")
    return Call(request=request, body={}, caller=ANONYMOUS, invocation_id="-")


def test_client_address_is_the_last_forwarded_entry():
    call = _call({"x-forwarded-for": "198.51.100.1, 203.0.113.7:51234"})
    assert call.client_address == "203.0.113.7"


def test_client_address_without_header_is_unknown():
    assert _call({}).client_address == "unknown"


def test_revoke_tokens_refuses_earlier_access_tokens(api, new_app):
    app = new_app()
    session = register_user(api, app, "revoked@example.com", "pw")
    token = session["access-token"]
    assert api.get("/api/appuser/getUser", headers={"access-token": token}).status_code == 200

    revoke_tokens(app["appId"], "revoked@example.com")

    response = api.get("/api/appuser/getUser", headers={"access-token": token})
    assert response.status_code == 400
    assert response.json() == error(405, "invalid access token")
