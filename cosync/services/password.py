"""Password reset (`forgotPassword`, `resetPassword`), password change (`changePassword`) and
the operator's reset of a user's password.

A reset code is six digits from the operating system's CSPRNG, e-mailed to the account's
handle and stored in `resetpasswords` as a keyed hash. Only the user's newest record counts,
so a new code invalidates the older ones. A code expires after `RESET_CODE_LIFETIME` and dies
after `MAX_FAILED_ATTEMPTS` guesses, counted before comparing (see `cosync.counters`).

`forgotPassword` returns `true` whether or not the account exists, and returns no sooner than
the `FORGOT_PASSWORD_RESPONSE_MS` setting, so neither the body nor the time reveals whether a
code was sent. Social (Apple, Google) and suspended accounts get no code: the first have no
password to reset, the second are blocked.

A successful reset or change revokes every access token issued before it.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from bson import ObjectId

from cosync import audit, counters, db, errors, ratelimit, templates
from cosync.auth import Caller
from cosync.crypto import codes_equal, hash_code, hash_password, verify_password
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.mail import MailError
from cosync.messages import send_template
from cosync.secrets import get_secrets
from cosync.settings import get_settings
from cosync.services.apps import check_app_active, load_active_app, load_app, setting
from cosync.services.signup import new_code
from cosync.services.users import find_by_identifier, load_user, revoke_tokens
from cosync.validation import normalise_handle, optional_text, require_code, require_password, require_text

log = logging.getLogger(__name__)

RESET_CODE_LIFETIME = datetime.timedelta(minutes=30)
MAX_FAILED_ATTEMPTS = 5
CODE_PURPOSE = "reset"
PENDING = "pending"


def forgot_password(app_id: str, body: dict[str, Any], address: str) -> bool:
    """E-mail a reset code to the account named by `handle` (an e-mail or a user name)."""
    started = time.monotonic()
    identifier = normalise_handle(require_text(body, "handle"))
    app = load_app(app_id)
    if "@" not in identifier and not setting(app, "userNamesEnabled"):
        raise ApiError(errors.APP_ISNOT_USERNAME_LOGIN, "user names are off for this app")
    check_app_active(app)
    ratelimit.hit(ratelimit.FORGOT_PASSWORD_PER_ADDRESS, f"{app_id}:{address}")
    ratelimit.hit(ratelimit.FORGOT_PASSWORD_PER_HANDLE, f"{app_id}:{identifier}")

    user = find_by_identifier(app_id, identifier)
    reason = _reset_refusal(user)
    if reason:
        audit.record(app_id, "forgotPassword", "error", identifier, reason=reason)
    else:
        try:
            issue_reset_code(app, user)
            audit.record(app_id, "forgotPassword", "success", user["handle"])
        except MailError as error:
            log.warning("reset mail for app %s failed: %s", app_id, error)
            audit.record(app_id, "forgotPassword", "error", user["handle"], reason="reset mail failed")

    _sleep_until(started + get_settings().forgot_password_response_ms / 1000)
    return True


def _reset_refusal(user: dict[str, Any] | None) -> str:
    """Return why `user` may not reset a password by e-mail, or "" when they may."""
    if user is None:
        return "no such account"
    if user.get("loginProvider"):
        return f"account signs in with {user['loginProvider']}"
    if user.get("status", "active") != "active":
        return f"account status is {user.get('status')!r}"
    return ""


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def issue_reset_code(app: dict[str, Any], user: dict[str, Any]) -> None:
    """Store a new reset code for `user`, invalidating older ones, and e-mail it.

    Raises MailError when the mail cannot be sent; the code is stored all the same.
    """
    app_id, handle = app["appId"], user["handle"]
    code = new_code()
    now = utc_now()
    records = db.collection(db.RESET_PASSWORDS)
    records.insert_one({
        "appId": app_id,
        "handle": handle,
        "codeHash": hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code),
        "status": PENDING,
        "createdAt": now,
        "updatedAt": now,
        "expiresAt": now + RESET_CODE_LIFETIME,
    })
    # Only the newest record is ever checked; deleting the older ones keeps the collection small.
    records.delete_many({"appId": app_id, "handle": handle, "createdAt": {"$lt": now}})
    send_template(app, templates.RESET_PASSWORD, handle, user.get("locale"), {"HANDLE": handle, "CODE": code})


def reset_password(app_id: str, body: dict[str, Any], address: str) -> bool:
    """Set a new password with a reset code; revoke the user's earlier tokens.

    A wrong, expired, used-up or unknown code, and an unknown account, all raise INVALID_DATA.
    Unlike CosyncJWT, a reset leaves two-factor login on: the mailbox alone must not be enough
    to take over an account that has a second factor.
    """
    identifier = normalise_handle(require_text(body, "handle"))
    password = require_password(body)
    code = require_code(body)
    app = load_active_app(app_id)
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{address}")

    user = find_by_identifier(app_id, identifier)
    if user is not None and user.get("loginProvider"):
        user = None  # An Apple or Google account has no password to reset.
    record = _newest_reset_record(app_id, user["handle"]) if user else None
    if user is None or record is None or not _code_matches(record, app_id, code):
        audit.record(app_id, "resetPassword", "error", identifier, code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "wrong, expired or unknown reset code")
    if db.collection(db.RESET_PASSWORDS).delete_one({"_id": record["_id"]}).deleted_count != 1:
        raise ApiError(errors.INVALID_DATA, "reset code was used by a parallel request")
    if user.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")

    _store_password(user, password)
    audit.record(app_id, "resetPassword", "success", user["handle"])
    return True


def _newest_reset_record(app_id: str, handle: str) -> dict[str, Any] | None:
    cursor = db.collection(db.RESET_PASSWORDS).find({"appId": app_id, "handle": handle})
    newest = list(cursor.sort([("createdAt", -1), ("_id", -1)]).limit(1))
    return newest[0] if newest else None


def _code_matches(record: dict[str, Any], app_id: str, code: str) -> bool:
    """Count one guess on the record, then compare; False once it expired or used its guesses.

    Records written by CosyncJWT hold the code in clear and no `codeHash`; they never match.
    """
    expires_at = record.get("expiresAt")
    if record.get("status") != PENDING or not isinstance(expires_at, datetime.datetime) or expires_at <= utc_now():
        return False
    if not counters.claim(f"{CODE_PURPOSE}-code:{record['_id']}", MAX_FAILED_ATTEMPTS, expires_at):
        return False
    expected = hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, record["handle"], code)
    return isinstance(record.get("codeHash"), str) and codes_equal(record["codeHash"], expected)


def _store_password(user: dict[str, Any], digest: str) -> None:
    """Store the new password hash and revoke every token issued so far."""
    db.collection(db.USERS).update_one(
        {"_id": user["_id"]}, {"$set": {"password": hash_password(digest), "updatedAt": utc_now()}}
    )
    revoke_tokens(user["appId"], user["handle"])


def change_password(caller: Caller, body: dict[str, Any]) -> bool:
    """Replace the signed-in user's password after checking the current one.

    As in CosyncJWT every failure of the request itself is INVALID_DATA, a wrong current
    password included. Guesses at the current password count against the login limit of the
    handle, so a stolen access token does not allow more guesses than the login route.
    """
    current = body.get("password")
    new = body.get("newPassword")
    if not isinstance(current, str) or not current or not isinstance(new, str) or not new:
        raise ApiError(errors.INVALID_DATA, "password and newPassword are required strings")
    new = require_password(body, "newPassword")
    if current.lower() == new:
        raise ApiError(errors.INVALID_DATA, "new password equals the current one")
    load_active_app(caller.app_id)
    user = load_user(caller)
    if user.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")
    ratelimit.hit(ratelimit.LOGIN_PER_HANDLE, f"{caller.app_id}:{user['handle']}")

    if not verify_password(current, user.get("password"))[0]:
        audit.record(caller.app_id, "changePassword", "error", user["handle"], code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "current password is wrong")
    _store_password(user, new)
    audit.record(caller.app_id, "changePassword", "success", user["handle"])
    return True


def reset_user_password(body: dict[str, Any]) -> bool:
    """Reset a user's password for the operator (`resetUserPassword`).

    `appId` and the user's `userId` (the document `_id`) or `handle` name the account, which
    must belong to that app. With `hashValue` (the 32-hex MD5 the SDKs send) it becomes the
    password. Without it the current password stops working and the user is e-mailed a reset
    code. `rawValue`, the plain password CosyncJWT e-mailed, is ignored: no password is ever
    e-mailed. Either way the user's earlier tokens are revoked. When the mail fails, the
    password stays cleared and INTERNAL_SERVER_ERROR is raised, so the operator can repeat it.
    """
    app = load_app(require_text(body, "appId"))
    app_id = app["appId"]
    user = _operator_user(app_id, body)
    if body.get("hashValue") not in (None, ""):
        _store_password(user, require_password(body, "hashValue"))
        audit.record(app_id, "resetUserPassword", "success", user["handle"], log_type="app", method="password")
        return True

    if user.get("loginProvider"):
        raise ApiError(errors.INVALID_DATA, f"account signs in with {user['loginProvider']}; set hashValue instead")
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"password": "", "updatedAt": utc_now()}})
    revoke_tokens(app_id, user["handle"])
    try:
        issue_reset_code(app, user)
    except MailError as error:
        audit.record(app_id, "resetUserPassword", "error", user["handle"], log_type="app", reason="reset mail failed")
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"reset mail failed: {error}") from None
    audit.record(app_id, "resetUserPassword", "success", user["handle"], log_type="app", method="code")
    return True


def _operator_user(app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Find the user named by `userId` or `handle`, within the app only."""
    user_id = optional_text(body, "userId")
    if user_id is not None:
        if not ObjectId.is_valid(user_id):
            raise ApiError(errors.INVALID_DATA, "userId is not an ObjectId")
        query: dict[str, Any] = {"_id": ObjectId(user_id)}
    else:
        query = {"handle": normalise_handle(require_text(body, "handle"))}
    user = db.collection(db.USERS).find_one({"appId": app_id, **query})
    if user is None:
        raise ApiError(errors.ACCOUNT_NOT_EXIST, f"no such user in app {app_id}")
    return user
