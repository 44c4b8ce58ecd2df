"""Forged, malformed and misplaced tokens are rejected with the contract's codes and change
nothing in the database.

Every forgery is tried in each place a token can arrive (`server-secret`, `app-token` and
`access-token` headers, `appToken` query parameter) against the routes that write: signup,
login, completeSignup and app creation.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cosync import db
from cosync.keys import load_server_key, thumbprint
from cosync.secrets import get_secrets
from cosync.tokens import issue_app_secret, sign_with_server_key
from flows import attempts_used, code_entries, digest, error, register_user, sign_up

INVALID_APP_TOKEN = error(400, "invalid app token")
INVALID_ACCESS_TOKEN = error(405, "invalid access token")
INVALID_ADMIN_TOKEN = error(400, "invalid admin token")

# Where a token can arrive, and the status and body that a bad token there gets on any route.
SLOTS = {
    "server-secret": (401, INVALID_ADMIN_TOKEN),
    "app-token": (400, INVALID_APP_TOKEN),
    "access-token": (400, INVALID_ACCESS_TOKEN),
    "appToken": (400, INVALID_APP_TOKEN),
}


@dataclass
class Target:
    """An app with a registered user and a pending sign-up whose code is known."""

    app: dict[str, Any]
    session: dict[str, str]
    user_handle: str
    pending_handle: str
    pending_code: str


@pytest.fixture
def target(api, new_app) -> Target:
    app = new_app()
    session = register_user(api, app, "owner@example.com", "pw")
    code = sign_up(api, app, "pending@example.com", "pw")
    return Target(app, session, "owner@example.com", "pending@example.com", code)


# Building tokens by hand


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict[str, Any]) -> str:
    return base64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def server_public_key() -> rsa.RSAPublicKey:
    secrets = get_secrets()
    return load_server_key(secrets.server_private_key_pem, secrets.server_key_passphrase).public_key()


def server_public_pem() -> bytes:
    return server_public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.cache
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims_for(scope: str, target: Target) -> dict[str, Any]:
    now = int(time.time())
    if scope == "server":
        return {"name": "CosyncJWT", "scope": "server", "iat": now}
    if scope == "app":
        return {"appId": target.app["appId"], "scope": "app", "iat": now}
    return {"handle": target.user_handle, "appId": target.app["appId"], "scope": "user", "tokenVersion": 0, "iat": now}


def signed_by_other_key(claims: dict[str, Any]) -> str:
    # The header names the real server key, so a server that picked keys by `kid` would fall for it.
    return jwt.encode(claims, other_rsa_key(), algorithm="RS256", headers={"kid": thumbprint(server_public_key())})


def unsigned_with_dot(claims: dict[str, Any]) -> str:
    return segment({"alg": "none", "typ": "JWT"}) + "." + segment(claims) + "."


def unsigned_without_dot(claims: dict[str, Any]) -> str:
    return segment({"alg": "none", "typ": "JWT"}) + "." + segment(claims)


def hs256_with_public_pem(claims: dict[str, Any], key: bytes) -> str:
    """Sign with HMAC-SHA256 keyed by the server's public PEM: the algorithm-confusion attack.

    PyJWT refuses PEM text as an HMAC key, so the token is assembled by hand.
    """
    signing_input = segment({"alg": "HS256", "typ": "JWT"}) + "." + segment(claims)
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + base64url(signature)


def hs256_with_public_pem_text(claims: dict[str, Any]) -> str:
    return hs256_with_public_pem(claims, server_public_pem())


def hs256_with_public_pem_stripped(claims: dict[str, Any]) -> str:
    return hs256_with_public_pem(claims, server_public_pem().strip())


def with_edited_payload(token: str, changes: dict[str, Any]) -> str:
    """Replace claims in a real token and keep its original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return header + "." + segment({**claims, **changes}) + "." + signature


# Sending tokens and checking that nothing changed


def send(api, slot: str, token: str, method: str, path: str, body: dict[str, Any] | None = None):
    if slot == "appToken":
        return api.session.request(method, api.base_url + path, params={"appToken": token}, json=body, timeout=30)
    return api.session.request(method, api.base_url + path, headers={slot: token}, json=body, timeout=30)


def write_attempts(target: Target) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/api/appuser/signup", {"handle": "intruder@example.com", "password": digest("pw")}),
        ("POST", "/api/appuser/login", {"handle": target.user_handle, "password": digest("pw")}),
        ("POST", "/api/appuser/completeSignup", {"handle": target.pending_handle, "code": target.pending_code}),
        ("POST", "/api/app", {"name": "Forged app"}),
    ]


def database_state(database, target: Target) -> dict[str, Any]:
    app_id = target.app["appId"]
    pending = database[db.SIGNUPS].find_one({"appId": app_id, "handle": target.pending_handle})
    user = database[db.USERS].find_one({"appId": app_id, "handle": target.user_handle})
    return {
        "users": database[db.USERS].count_documents({}),
        "signups": database[db.SIGNUPS].count_documents({}),
        "apps": database[db.APPS].count_documents({}),
        "pending": (pending["status"], attempts_used(target.app, target.pending_handle)),
        "codes": len(code_entries(database, target.app, target.pending_handle)),
        "lastLogin": user["lastLogin"],
    }


def assert_rejected_everywhere(api, database, target: Target, token: str, label: str) -> None:
    before = database_state(database, target)
    for slot, (status, body) in SLOTS.items():
        for method, path, payload in write_attempts(target):
            response = send(api, slot, token, method, path, payload)
            where = f"{label} in {slot} on {path}"
            assert response.status_code == status, where
            assert response.json() == body, where
    assert database_state(database, target) == before, label


# Forgeries


@pytest.mark.parametrize("scope", ["app", "user", "server"])
def test_token_signed_by_other_key(api, database, target, scope):
    token = signed_by_other_key(claims_for(scope, target))

    assert_rejected_everywhere(api, database, target, token, f"{scope} token signed by another key")


@pytest.mark.parametrize("scope", ["app", "user", "server"])
@pytest.mark.parametrize("forge", [unsigned_with_dot, unsigned_without_dot])
def test_unsigned_alg_none_token(api, database, target, scope, forge):
    token = forge(claims_for(scope, target))

    assert_rejected_everywhere(api, database, target, token, f"{scope} token with alg none ({forge.__name__})")


@pytest.mark.parametrize("scope", ["app", "user", "server"])
@pytest.mark.parametrize("forge", [hs256_with_public_pem_text, hs256_with_public_pem_stripped])
def test_hs256_keyed_with_public_pem(api, database, target, scope, forge):
    token = forge(claims_for(scope, target))

    assert_rejected_everywhere(api, database, target, token, f"{scope} token, {forge.__name__}")


def test_real_signature_with_edited_claims(api, database, target):
    edits = {
        "access token raised to server": with_edited_payload(target.session["access-token"], {"scope": "server"}),
        "access token turned app": with_edited_payload(target.session["access-token"], {"scope": "app"}),
        "access token for other user": with_edited_payload(target.session["access-token"], {"handle": "victim@example.com"}),
        "app token for other app": with_edited_payload(target.app["appToken"], {"appId": "f" * 32}),
        "app token raised to server": with_edited_payload(target.app["appToken"], {"scope": "server"}),
    }

    for label, token in edits.items():
        assert_rejected_everywhere(api, database, target, token, label)


@pytest.mark.parametrize(
    "label, make_token",
    [
        ("empty", lambda target: ""),
        ("one word", lambda target: "garbage"),
        ("three dots of nothing", lambda target: "a.b.c"),
        ("two segments", lambda target: "eyJhbGciOiJSUzI1NiJ9.e30"),
        ("truncated signature", lambda target: target.app["appToken"][:-6]),
        ("extra signature byte", lambda target: target.app["appToken"] + "A"),
        ("signature removed", lambda target: target.app["appToken"].rsplit(".", 1)[0] + "."),
        ("header only", lambda target: target.app["appToken"].split(".")[0]),
        ("not base64", lambda target: "%%%.%%%.%%%"),
    ],
)
def test_garbage_token(api, database, target, label, make_token):
    assert_rejected_everywhere(api, database, target, make_token(target), label)


# Expiry


def test_token_with_future_exp_is_accepted(api, target):
    token = sign_with_server_key({"appId": target.app["appId"], "scope": "app", "exp": int(time.time()) + 3600})

    response = api.get("/api/appuser/getApplication", headers={"app-token": token})

    assert response.status_code == 200
    assert response.json()["name"] == target.app["name"]


def test_token_with_past_exp_is_rejected(api, database, target):
    past = int(time.time()) - 60
    expired = {
        "expired app token": sign_with_server_key({"appId": target.app["appId"], "scope": "app", "exp": past}),
        "expired access token": sign_with_server_key(
            {"handle": target.user_handle, "appId": target.app["appId"], "scope": "user", "tokenVersion": 0, "exp": past}
        ),
        "expired server secret": sign_with_server_key({"name": "CosyncJWT", "scope": "server", "exp": past}),
    }

    for label, token in expired.items():
        assert_rejected_everywhere(api, database, target, token, label)


def test_token_without_iat_is_rejected(api, database, target):
    secrets = get_secrets()
    server_key = load_server_key(secrets.server_private_key_pem, secrets.server_key_passphrase)
    token = jwt.encode({"appId": target.app["appId"], "scope": "app"}, server_key, algorithm="RS256")

    assert_rejected_everywhere(api, database, target, token, "app token without iat")


# Real tokens in the wrong place


def test_user_token_as_server_secret(api, database, target):
    before = database_state(database, target)

    create = api.post("/api/app", headers={"server-secret": target.session["access-token"]}, json={"name": "Escalated"})
    read = api.get(f"/api/app/appId/{target.app['appId']}", headers={"server-secret": target.session["access-token"]})

    assert create.status_code == 401
    assert create.json() == INVALID_ADMIN_TOKEN
    assert read.status_code == 401
    assert read.json() == INVALID_ADMIN_TOKEN
    assert database_state(database, target) == before


def test_app_token_as_server_secret(api, database, target):
    before = database_state(database, target)

    create = api.post("/api/app", headers={"server-secret": target.app["appToken"]}, json={"name": "From app token"})

    assert create.status_code == 401
    assert create.json() == INVALID_ADMIN_TOKEN
    assert database_state(database, target) == before


def test_app_secret_is_no_credential(api, database, target):
    app_secret = issue_app_secret(target.app["appId"])

    assert_rejected_everywhere(api, database, target, app_secret, "app secret")


def test_server_secret_outside_server_header(api, database, target, server_secret):
    before = database_state(database, target)
    signup_body = {"handle": "intruder@example.com", "password": digest("pw")}

    as_app_token = api.post("/api/appuser/signup", headers={"app-token": server_secret}, json=signup_body)
    as_access_token = api.get("/api/appuser/getUser", headers={"access-token": server_secret})
    as_query = api.get("/api/appuser/getApplication", params={"appToken": server_secret})
    login = api.post(
        "/api/appuser/login",
        headers={"app-token": server_secret},
        json={"handle": target.user_handle, "password": digest("pw")},
    )

    assert as_app_token.status_code == 400
    assert as_app_token.json() == INVALID_APP_TOKEN
    assert as_access_token.status_code == 400
    assert as_access_token.json() == INVALID_ACCESS_TOKEN
    assert as_query.status_code == 400
    assert as_query.json() == INVALID_APP_TOKEN
    assert login.status_code == 400
    assert login.json() == INVALID_APP_TOKEN
    assert database_state(database, target) == before


def test_first_token_present_decides(api, database, target, server_secret):
    # Only the first token present is checked, in the order server-secret, app-token,
    # access-token, appToken query. A valid token behind a bad one does not help.
    before = database_state(database, target)

    bad_server_secret = api.post(
        "/api/app", headers={"server-secret": "garbage", "app-token": target.app["appToken"]}, json={"name": "Mixed"}
    )
    bad_app_token = api.get(
        "/api/appuser/getApplication",
        headers={"app-token": "garbage", "access-token": target.session["access-token"]},
    )
    bad_access_token = api.get(
        "/api/appuser/getApplication",
        headers={"access-token": "garbage"},
        params={"appToken": target.app["appToken"]},
    )

    assert bad_server_secret.status_code == 401
    assert bad_server_secret.json() == INVALID_ADMIN_TOKEN
    assert bad_app_token.status_code == 400
    assert bad_app_token.json() == INVALID_APP_TOKEN
    assert bad_access_token.status_code == 400
    assert bad_access_token.json() == INVALID_ACCESS_TOKEN
    assert database_state(database, target) == before


# SDK header habits


def test_kotlin_app_token_in_access_token_header(api, database, target):
    """The Kotlin SDK sends the app token in `access-token`, so the token's scope decides."""
    headers = {"access-token": target.app["appToken"]}

    signup = api.post(
        "/api/appuser/signup", headers=headers, json={"handle": "kotlin@example.com", "password": digest("pw")}
    )
    login = api.post(
        "/api/appuser/login", headers=headers, json={"handle": target.user_handle, "password": digest("pw")}
    )

    assert signup.status_code == 200
    assert signup.content == b"true"
    pending = database[db.SIGNUPS].find_one({"appId": target.app["appId"], "handle": "kotlin@example.com"})
    assert pending["status"] == "pending"
    assert login.status_code == 200
    assert set(login.json()) == {"jwt", "access-token"}


def test_javascript_access_token_on_app_routes(api, database, target):
    """The JavaScript SDK may send an access token to signup and login, which need an app token."""
    before = database_state(database, target)
    headers = {"access-token": target.session["access-token"]}

    signup = api.post(
        "/api/appuser/signup", headers=headers, json={"handle": "js@example.com", "password": digest("pw")}
    )
    login = api.post(
        "/api/appuser/login", headers=headers, json={"handle": target.user_handle, "password": digest("pw")}
    )

    assert signup.status_code == 400
    assert signup.json() == INVALID_APP_TOKEN
    assert login.status_code == 400
    assert login.json() == INVALID_APP_TOKEN
    assert database_state(database, target) == before
