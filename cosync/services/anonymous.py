"""Anonymous login (`loginAnonymous`): an account known only by a handle the app generates.

The SDKs generate `ANON_<uuid>` handles. Whoever knows the handle owns the account (it is
also the JWT `sub`), so it must be long and random: this server accepts only handles that
start with `ANON_` followed by `MIN_SUFFIX_LENGTH` to `MAX_SUFFIX_LENGTH` letters, digits, `-`
or `_`. The handle is kept as sent (case included), as CosyncJWT does.

Differences from CosyncJWT: only accounts created by anonymous login can log in this way (an
account that merely has `ANON_` in its handle cannot), suspended users and apps are refused,
and the request's `password`, `owner` and `metaData` are ignored, so no request value reaches
the JWT claims or the stored account.
"""

from __future__ import annotations

import re
from typing import Any

from cosync import audit, db, errors, ratelimit
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.services.accounts import insert_user, new_user
from cosync.services.apps import load_app, check_app_active, setting, signing_key
from cosync.services.sessions import issue_session
from cosync.validation import parse_locale

HANDLE_PREFIX = "ANON_"
MIN_SUFFIX_LENGTH = 16
MAX_SUFFIX_LENGTH = 128
HANDLE_PATTERN = re.compile(rf"{HANDLE_PREFIX}[A-Za-z0-9_-]{{{MIN_SUFFIX_LENGTH},{MAX_SUFFIX_LENGTH}}}")


def _require_anonymous_handle(body: dict[str, Any]) -> str:
    handle = body.get("handle")
    if not isinstance(handle, str) or not HANDLE_PATTERN.fullmatch(handle):
        # CosyncJWT also returns 600 for a missing handle.
        raise ApiError(errors.INVALID_CREDENTIALS, "handle is not ANON_ followed by 16 to 128 letters, digits, - or _")
    return handle


def is_anonymous_account(user: dict[str, Any]) -> bool:
    """Tell whether anonymous login created `user`.

    Accounts created here carry `anonymous: true`. Those from a CosyncJWT database lack the
    flag; they are recognised by their `ANON_` handle without a password hash or social
    provider (CosyncJWT stored any request `password` of an anonymous login as sent).
    """
    if user.get("anonymous") is True:
        return True
    password = user.get("password") or ""
    return (
        str(user.get("handle", "")).startswith(HANDLE_PREFIX)
        and not user.get("loginProvider")
        and not password.startswith(("$argon2", "$2a$", "$2b$", "$2y$"))
    )


def login_anonymous(app_id: str, body: dict[str, Any], client_address: str) -> dict[str, str]:
    """Log in the anonymous account `handle`, creating it on first use."""
    handle = _require_anonymous_handle(body)
    app = load_app(app_id)
    if setting(app, "anonymousLoginEnabled") is not True:
        raise ApiError(errors.APP_ISNOT_ANONYMOUS_LOGIN, f"anonymous login is off for app {app_id}")
    check_app_active(app)

    users = db.collection(db.USERS)
    user = users.find_one({"appId": app_id, "handle": handle})
    created = user is None
    if created:
        user = _create_account(app, handle, body, client_address)
    if user is None or not is_anonymous_account(user):
        raise ApiError(errors.INVALID_CREDENTIALS, "handle belongs to an account that is not anonymous")
    if user.get("status", "active") != "active":
        audit.record(app_id, "loginAnonymous", "error", handle, code=errors.USER_IS_SUSPENDED.code)
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")

    session = issue_session(user, app, signing_key(app))
    users.update_one({"_id": user["_id"]}, {"$set": {"lastLogin": utc_now()}})
    audit.record(app_id, "loginAnonymous", "success", handle, created=created)
    return session


def _create_account(app: dict[str, Any], handle: str, body: dict[str, Any], client_address: str) -> dict[str, Any] | None:
    """Store a new anonymous account and return it, or the account a parallel request stored."""
    ratelimit.hit(ratelimit.ANONYMOUS_ACCOUNTS_PER_ADDRESS, f"{app['appId']}:{client_address}")
    locale = parse_locale(body, setting(app, "locales"))
    user = new_user(app["appId"], handle, "", locale, {}, anonymous=True)
    try:
        insert_user(app, user)
    except ApiError as error:
        if error.error != errors.HANDLE_ALREADY_REGISTERED:
            raise
        return db.collection(db.USERS).find_one({"appId": app["appId"], "handle": handle})
    return user
