"""The tokens a successful login or sign-up returns."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from cosync import errors
from cosync.errors import ApiError
from cosync.keys import load_app_private_key, thumbprint
from cosync.tokens import UserJwtKey, issue_access_token, issue_user_jwt, user_jwt_claims


def issue_session(user: dict[str, Any], app: dict[str, Any], key: UserJwtKey) -> dict[str, str]:
    """Return `{"jwt", "access-token"}`; raise INVALID_METADATA when required claims are missing."""
    user_jwt = issue_user_jwt(user, app, key)
    if user_jwt is None:
        raise _missing_claims()
    access_token = issue_access_token(user["handle"], app["appId"], int(user.get("tokenVersion") or 0))
    return {"jwt": user_jwt, "access-token": access_token}


def check_session_claims(user: dict[str, Any], app: dict[str, Any], key: UserJwtKey) -> None:
    """Raise what `issue_session` would raise for this user and key, without signing anything:
    INVALID_METADATA for missing claims, or the error of a key that does not load."""
    if user_jwt_claims(user, app, time.time()) is None:
        raise _missing_claims()
    load_app_private_key(key.private_key64)


def _missing_claims() -> ApiError:
    return ApiError(errors.INVALID_METADATA, "user metadata lacks a required JWT field")


def legacy_user_token(
    user: dict[str, Any], app: dict[str, Any], key: UserJwtKey, code: int | str, sender_handle: str | None = None
) -> str:
    """Sign the `signed-user-token` that Swift SDK builds from before 2023-10-29 require in the
    `completeSignup` and `register` responses.

    CosyncJWT signed it with the app's key (RS256) over the handle, app id, code and the
    metadata as JSON text indented by 10 spaces ("" without metadata); current SDKs ignore it.
    """
    metadata = user.get("metaData")
    claims: dict[str, Any] = {
        "handle": user["handle"],
        "appId": app["appId"],
        "code": int(code),
        "metaData": json.dumps(metadata, indent=10) if metadata else "",
        "iat": int(time.time()),
    }
    if sender_handle:
        claims["senderHandle"] = sender_handle
    private_key = load_app_private_key(key.private_key64)
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": thumbprint(private_key.public_key())})
