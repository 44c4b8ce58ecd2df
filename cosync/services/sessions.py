"""The tokens a successful login or sign-up returns."""

from __future__ import annotations

from typing import Any

from cosync import errors
from cosync.errors import ApiError
from cosync.tokens import UserJwtKey, issue_access_token, issue_user_jwt


def issue_session(user: dict[str, Any], app: dict[str, Any], key: UserJwtKey) -> dict[str, str]:
    """Return `{"jwt", "access-token"}`; raise INVALID_METADATA when required claims are missing."""
    user_jwt = issue_user_jwt(user, app, key)
    if user_jwt is None:
        raise ApiError(errors.INVALID_METADATA, "user metadata lacks a required JWT field")
    access_token = issue_access_token(user["handle"], app["appId"], int(user.get("tokenVersion") or 0))
    return {"jwt": user_jwt, "access-token": access_token}
