"""Creating user accounts: the steps every flow that makes a new user shares.

Sign-up, invitation, social sign-up and anonymous login build the `users` document the same
way, store it under the unique (app, handle) index, and return the first session.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from cosync import db, errors, templates
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.messages import send_template_or_log
from cosync.services.apps import signing_key
from cosync.services.sessions import issue_session
from cosync.tokens import user_jwt_claims


def new_user(
    app_id: str, handle: str, password_hash: str, locale: str, metadata: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Return a new active `users` document; `fields` add to or replace the defaults."""
    now = utc_now()
    return {
        "handle": handle,
        "password": password_hash,
        "appId": app_id,
        "locale": locale,
        "status": "active",
        "metaData": metadata,
        "loginProvider": "",
        "twoFactorPhoneVerification": False,
        "twoFactorGoogleVerification": False,
        "tokenVersion": 0,
        "lastLogin": now,
        "createdAt": now,
        "updatedAt": now,
        **fields,
    }


def insert_user(
    app: dict[str, Any], user: dict[str, Any], missing_metadata: errors.ErrorCode = errors.INVALID_DATA
) -> None:
    """Store a new user, unless the app's JWT needs metadata the user lacks (`missing_metadata`)
    or the handle is taken (601); the unique index decides between parallel requests."""
    if user_jwt_claims(user, app, 0) is None:
        raise ApiError(missing_metadata, "user metadata lacks a required JWT field")
    try:
        db.collection(db.USERS).insert_one(user)
    except DuplicateKeyError:
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "handle already has an account") from None


def welcome(app: dict[str, Any], user: dict[str, Any]) -> dict[str, str]:
    """Return the new user's session tokens and send the welcome mail (a failure is only logged)."""
    session = issue_session(user, app, signing_key(app))
    send_template_or_log(app, templates.SIGN_UP_SUCCESS, user["handle"], user["locale"], {"HANDLE": user["handle"]})
    return session
