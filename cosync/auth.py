"""Caller identification: token verification and classification by the token's `scope` claim."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from cosync import errors
from cosync.errors import ApiError
from cosync.tokens import SCOPE_APP, SCOPE_SERVER, SCOPE_USER, InvalidToken, decode_server_token


@dataclass(frozen=True)
class Caller:
    """The caller, classified by the token's `scope` claim (not by the header it came in)."""

    scope: str | None = None
    app_id: str | None = None
    handle: str | None = None
    token_version: int = 0
    issued_at: int = 0  # the token's `iat`, seconds since the epoch


ANONYMOUS = Caller()


# The headers a token may arrive in, in the precedence order of the reference server, with the
# error and HTTP status of a failure. A server-scoped token is accepted only from `server-secret`,
# and that header accepts nothing else.
TOKEN_SOURCES = (
    ("server-secret", errors.INVALID_ADMIN_TOKEN, 401),
    ("app-token", errors.INVALID_APP_TOKEN, 400),
    ("access-token", errors.INVALID_ACCESS_TOKEN, 400),
)


def resolve_caller(headers: Mapping[str, str], params: Mapping[str, str]) -> Caller:
    """Verify the first token present and classify the caller by its `scope` claim.

    The SDKs mix the headers up (Kotlin sends the app token in `access-token`), so an app or
    user token is accepted from either header and from the `appToken` query parameter.
    """
    for header, failure, status in TOKEN_SOURCES:
        token = headers.get(header)
        if token is not None:
            return _caller_from_token(token, failure, status, server_allowed=header == "server-secret")
    token = params.get("appToken")
    if token is not None:
        return _caller_from_token(token, errors.INVALID_APP_TOKEN, 400, server_allowed=False)
    return ANONYMOUS


def _caller_from_token(token: str, failure: errors.ErrorCode, status: int, server_allowed: bool) -> Caller:
    try:
        claims = decode_server_token(token.strip())
    except InvalidToken as error:
        raise ApiError(failure, f"token rejected: {error}", status=status) from None
    scope = claims.get("scope")
    app_id = claims.get("appId")
    if scope == SCOPE_SERVER and server_allowed and "handle" not in claims:
        return Caller(scope=SCOPE_SERVER)
    if server_allowed:
        # No SDK sends `server-secret`, so another token there is a wrong server secret. That
        # includes a "server" scope with a `handle`: an access token that CosyncJWT minted with
        # the scope taken from the request's `owner` field, never a real server secret.
        raise ApiError(failure, f"token scope {scope!r} in the server-secret header", status=status)
    if scope == SCOPE_APP and isinstance(app_id, str) and app_id:
        return Caller(scope=SCOPE_APP, app_id=app_id)
    handle = claims.get("handle")
    version = claims.get("tokenVersion", 0)
    if (
        scope == SCOPE_USER
        and isinstance(app_id, str)
        and app_id
        and isinstance(handle, str)
        and handle
        and isinstance(version, int)
    ):
        return Caller(
            scope=SCOPE_USER, app_id=app_id, handle=handle, token_version=version, issued_at=int(claims["iat"])
        )
    raise ApiError(failure, f"token scope {scope!r} is not accepted here", status=status)
