"""Reading the signed-in user (`getUser`)."""

from __future__ import annotations

import datetime
from typing import Any

from cosync import db, errors
from cosync.errors import ApiError
from cosync.auth import Caller
from cosync.dates import iso
from cosync.services.apps import load_active_app

# The fields `getUser` returns, with the CosyncJWT defaults for those a document may lack.
USER_FIELDS: dict[str, Any] = {
    "status": None,
    "createdAt": None,
    "updatedAt": None,
    "handle": None,
    "locale": "EN",
    "userName": None,
    "twoFactorPhoneVerification": False,
    "twoFactorGoogleVerification": False,
    "appId": None,
    "phone": None,
    "phoneVerified": None,
    "metaData": None,
    "loginProvider": "",
    "lastLogin": None,
}


def load_user(caller: Caller) -> dict[str, Any]:
    """Return the caller's user document; a revoked access token raises INVALID_ACCESS_TOKEN.

    A token issued before the account was created belongs to an earlier, deleted account with
    the same handle, so it is revoked too.
    """
    user = db.collection(db.USERS).find_one({"appId": caller.app_id, "handle": caller.handle})
    if user is None:
        raise ApiError(errors.INVALID_DATA, "user not found")
    if int(user.get("tokenVersion") or 0) != caller.token_version:
        raise ApiError(errors.INVALID_ACCESS_TOKEN, "access token was revoked")
    created_at = user.get("createdAt")
    if isinstance(created_at, datetime.datetime) and caller.issued_at < int(created_at.timestamp()):
        raise ApiError(errors.INVALID_ACCESS_TOKEN, "access token predates the account")
    return user


def find_by_identifier(app_id: str, identifier: str) -> dict[str, Any] | None:
    """Return the user whose handle, or user name when `identifier` has no `@`, is `identifier`.

    A user name never contains `@`, so an identifier selects exactly one of the two fields.
    """
    field = "handle" if "@" in identifier else "userName"
    return db.collection(db.USERS).find_one({"appId": app_id, field: identifier})


def revoke_tokens(app_id: str, handle: str) -> None:
    """Invalidate every access and login token issued to the user so far.

    Tokens carry the user's `tokenVersion`; raising it makes `load_user` refuse the older
    ones. Password change and reset, suspension and deletion call this.
    """
    db.collection(db.USERS).update_one({"appId": app_id, "handle": handle}, {"$inc": {"tokenVersion": 1}})


def delete_user(user: dict[str, Any]) -> None:
    """Delete the user and every record kept for its handle: sign-ups, sign-up codes, invites
    to it, reset and SMS codes, and its user-name claim."""
    db.collection(db.USERS).delete_one({"_id": user["_id"]})
    query = {"appId": user["appId"], "handle": user["handle"]}
    for name in (db.SIGNUPS, db.SIGNUP_CODES, db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES):
        db.collection(name).delete_many(query)


def get_user(caller: Caller) -> dict[str, Any]:
    load_active_app(caller.app_id)
    user = load_user(caller)
    view = {}
    for name, default in USER_FIELDS.items():
        value = user.get(name, default)
        if value is not None:
            view[name] = iso(value)
    if not isinstance(view.get("metaData"), dict):
        view["metaData"] = {}
    return view
