"""Tokens: those the server key signs (server secret, app, access) and the per-app user JWT.

Every decode passes `algorithms=["RS256"]`, so a token whose header names `none` or HS256 is
rejected whatever key it claims.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from cosync.dotpath import get_path, set_path
from cosync.keys import load_app_private_key, load_public_key_pem, load_server_key, thumbprint
from cosync.secrets import get_secrets
from cosync.settings import get_settings

ALGORITHMS = ["RS256"]

SCOPE_SERVER = "server"
SCOPE_APP = "app"
SCOPE_USER = "user"
SCOPE_APP_SECRET = "appSecret"
# Login tokens stand between the password and the second factor; no route but loginComplete
# accepts this scope.
SCOPE_LOGIN = "login"
LOGIN_TOKEN_LIFETIME_SECONDS = 600

# Claims that identify the token itself; user metadata may never set them.
REGISTERED_CLAIMS = frozenset({"aud", "sub", "exp", "iat", "iss", "nbf", "jti"})


class InvalidToken(Exception):
    """A token failed signature or claim verification."""


def _server_key():
    secrets = get_secrets()
    return load_server_key(secrets.server_private_key_pem, secrets.server_key_passphrase)


def server_public_key() -> rsa.RSAPublicKey:
    """Return the public half of the current server key."""
    return _server_key().public_key()


def server_verification_keys(kid: str | None, now: float) -> list[rsa.RSAPublicKey]:
    """Return the server keys that may have signed a token whose header names `kid`.

    The previous server key counts until its `server-previous-key-valid-until`. Tokens of the
    reference server carry no `kid`, so they are tried against both keys.
    """
    secrets = get_secrets()
    keys = [server_public_key()]
    previous_pem = secrets.server_previous_public_key_pem
    valid_until = secrets.server_previous_key_valid_until
    if previous_pem is not None and valid_until is not None and now < valid_until.timestamp():
        keys.append(load_public_key_pem(previous_pem))
    if kid is None:
        return keys
    return [key for key in keys if thumbprint(key) == kid]


def sign_with_server_key(claims: dict[str, Any]) -> str:
    key = _server_key()
    payload = {**claims, "iat": int(time.time())}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": thumbprint(key.public_key())})


def decode_server_token(token: str) -> dict[str, Any]:
    """Verify a token signed by the server key and return its claims.

    Tokens issued by the reference server carry no `exp`; one that does is checked.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken("the kid header is not a string")
    keys = server_verification_keys(kid, time.time())
    if not keys:
        raise InvalidToken(f"no server key has the kid {kid!r}")
    error: jwt.PyJWTError | None = None
    for key in keys:
        try:
            return jwt.decode(
                token, key, algorithms=ALGORITHMS, options={"require": ["iat"], "verify_aud": False}
            )
        except jwt.InvalidSignatureError as failure:
            error = failure
        except jwt.PyJWTError as failure:
            raise InvalidToken(str(failure)) from None
    raise InvalidToken(str(error)) from None


def issue_server_secret() -> str:
    return sign_with_server_key({"name": get_settings().server_name, "scope": SCOPE_SERVER})


def issue_app_token(app_id: str) -> str:
    return sign_with_server_key({"appId": app_id, "scope": SCOPE_APP})


def issue_app_secret(app_id: str) -> str:
    return sign_with_server_key({"appId": app_id, "scope": SCOPE_APP_SECRET})


def issue_access_token(handle: str, app_id: str, token_version: int) -> str:
    """Mint an access token; its scope is always "user", whatever the request carried."""
    return sign_with_server_key(
        {"handle": handle, "appId": app_id, "scope": SCOPE_USER, "tokenVersion": token_version}
    )


def issue_login_token(handle: str, app_id: str, token_version: int, method: str) -> tuple[str, str]:
    """Mint a login token for the second factor `method`; return it with its `jti`.

    It expires after `LOGIN_TOKEN_LIFETIME_SECONDS`, and `jti` keys its attempt counter.
    """
    token_id = uuid.uuid4().hex
    claims = {
        "handle": handle,
        "appId": app_id,
        "scope": SCOPE_LOGIN,
        "tokenVersion": token_version,
        "method": method,
        "jti": token_id,
        "exp": int(time.time()) + LOGIN_TOKEN_LIFETIME_SECONDS,
    }
    return sign_with_server_key(claims), token_id


def decode_login_token(token: str) -> dict[str, Any]:
    """Verify a login token and return its claims; any other token raises InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            _server_key().public_key(),
            algorithms=ALGORITHMS,
            options={"require": ["iat", "exp", "jti"], "verify_aud": False},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from None
    if claims.get("scope") != SCOPE_LOGIN:
        raise InvalidToken(f"token scope {claims.get('scope')!r} is not a login token")
    for name, kind in (("handle", str), ("appId", str), ("method", str), ("jti", str), ("tokenVersion", int)):
        if not isinstance(claims.get(name), kind) or isinstance(claims.get(name), bool):
            raise InvalidToken(f"login token claim {name} is missing or malformed")
    return claims


@dataclass(frozen=True)
class UserJwtKey:
    """The app's signing key in its stored plaintext form (base64 of PKCS#1 PEM)."""

    private_key64: str


def issuer_for(app_id: str) -> str:
    return f"{get_settings().public_base_url}/api/apps/{app_id}"


def user_jwt_audience(app: dict[str, Any]) -> str:
    """Return the `aud` claim: the app's `jwtAudience`, else as CosyncJWT its `realmAppId` or "none"."""
    return app.get("jwtAudience") or app.get("realmAppId") or "none"


def user_jwt_lifetime_seconds(app: dict[str, Any]) -> float:
    """Return the user JWT lifetime from `userJWTExpiration` hours.

    The schema default is 24 hours, and a stored 0 means one hour, as in the reference server.
    """
    hours = app.get("userJWTExpiration")
    hours = 24 if hours is None else (hours or 1)
    return float(hours) * 3600


def is_anonymous_handle(handle: str) -> bool:
    return handle.startswith("ANON_")


def user_jwt_claims(user: dict[str, Any], app: dict[str, Any], now: float) -> dict[str, Any] | None:
    """Build the user JWT claims as CosyncJWT does, or None when required metadata is missing.

    Differences from the reference server: metadata can never set a registered claim, `email`
    or `userName` (the `email` claim is always the handle, or absent), and an anonymous user's
    claims come from placeholders only.
    """
    handle = user["handle"]
    anonymous = is_anonymous_handle(handle)
    stored = user.get("metaData")
    metadata: dict[str, Any] = {} if anonymous or not isinstance(stored, dict) else copy.deepcopy(stored)
    email_field_path = None
    for field in app.get("metaData") or []:
        path = field.get("path")
        if not isinstance(path, str) or not path:
            continue
        if field.get("fieldName") == "email":
            set_path(metadata, path, handle)
            email_field_path = path
        value = f"ANON_{field.get('fieldName')}" if anonymous else get_path(metadata, path)
        if field.get("required") and not value:
            return None
        if value:
            set_path(metadata, path, value)

    claims = {key: value for key, value in metadata.items() if key not in REGISTERED_CLAIMS | {"email", "userName"}}
    # A declared e-mail field carries the handle at its own path instead of the `email` claim.
    if app.get("metaDataEmail") and email_field_path is None:
        claims["email"] = handle
    elif email_field_path == "email":
        claims["email"] = metadata["email"]

    claims.update({
        "aud": user_jwt_audience(app),
        "sub": handle,
        "exp": int(now + user_jwt_lifetime_seconds(app)),
        "iss": issuer_for(app["appId"]),
        "iat": int(now),
    })
    if user.get("userName") and app.get("userNamesEnabled"):
        claims["userName"] = user["userName"]
    return claims


def issue_user_jwt(user: dict[str, Any], app: dict[str, Any], key: UserJwtKey) -> str | None:
    """Sign the user JWT with the app's key; None when the user lacks required metadata."""
    claims = user_jwt_claims(user, app, time.time())
    if claims is None:
        return None
    private_key = load_app_private_key(key.private_key64)
    return jwt.encode(
        claims,
        private_key,
        algorithm="RS256",
        headers={"kid": thumbprint(private_key.public_key())},
    )
