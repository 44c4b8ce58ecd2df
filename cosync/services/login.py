"""Password login (`login`).

Login fails the same way whether or not the handle exists, and costs one password hash in
both cases. The password is checked first, against a dummy hash when there is no account, so
only the owner of the right password learns that an account is pending or suspended.

NOTE: an unknown e-mail address costs one database round trip more than a wrong password (the
pending sign-ups are read), about a millisecond next to a hash of 40 ms or more. The limit of
10 attempts per handle in 15 minutes leaves few samples to average that out.
"""

from __future__ import annotations

from typing import Any

from cosync import audit, db, errors, overlap, ratelimit
from cosync.crypto import burn_password_check, hash_password, verify_password
from cosync.errors import ApiError
from cosync.dates import utc_now
from cosync.services.apps import check_app_active, load_app, setting, signing_key
from cosync.services import two_factor
from cosync.services.sessions import check_session_claims, issue_session
from cosync.services.signup import LEGACY_FIELDS, pending_entries, with_legacy_entry
from cosync.validation import normalise_handle, require_text


def login(app_id: str, body: dict[str, Any], address: str) -> dict[str, str]:
    identifier = normalise_handle(require_text(body, "handle"))
    password = require_text(body, "password")

    app = load_app(app_id)
    by_user_name = "@" not in identifier
    if by_user_name and not setting(app, "userNamesEnabled"):
        raise ApiError(errors.APP_ISNOT_USERNAME_LOGIN, "user names are off for this app")
    check_app_active(app)
    # A user name never contains `@`, so an identifier selects exactly one of the two fields.
    query = {"appId": app_id, "userName" if by_user_name else "handle": identifier}
    # Both limits count every attempt, whether or not the handle exists, so a rejection reveals
    # nothing about the account. The user is read meanwhile (also for a request that the limits
    # then reject), and a full limit returns 429 before anything about the account is used.
    user, _ = overlap.both(
        lambda: db.collection(db.USERS).find_one(query),
        lambda: ratelimit.hit_many([
            (ratelimit.LOGIN_PER_ADDRESS, f"{app_id}:{address}"),
            (ratelimit.LOGIN_PER_HANDLE, f"{app_id}:{identifier}"),
        ]),
    )
    if user is None:
        _reject_unknown_user(app, identifier, password, by_user_name)

    matches, needs_upgrade = verify_password(password, user.get("password"))
    if not matches:
        audit.record(app_id, "login", "error", user["handle"], code=errors.INVALID_CREDENTIALS.code)
        raise ApiError(errors.INVALID_CREDENTIALS, "wrong password")
    status = user.get("status", "active")
    if status == "pending":
        raise ApiError(errors.ACCOUNT_IS_NOT_VERIFIED, "account is pending")
    if status != "active":
        audit.record(app_id, "login", "error", user["handle"], code=errors.USER_IS_SUSPENDED.code)
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {status!r}")
    if needs_upgrade:
        # The password is proven here, also when a second factor follows, so a CosyncJWT bcrypt
        # hash becomes Argon2id on the first login of any kind.
        db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"password": hash_password(password)}})
    challenge = two_factor.start_login(app, user, address)
    if challenge is not None:
        return challenge

    # Only a user whose JWT can be built gets `lastLogin`. The tokens are signed on the pool while
    # this thread waits for the update: the signing holds the GIL, the wait does not.
    key = signing_key(app)
    check_session_claims(user, app, key)
    session, _ = overlap.both(
        lambda: issue_session(user, app, key),
        lambda: db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"lastLogin": utc_now()}}),
    )
    audit.record(app_id, "login", "success", user["handle"])
    return session


def _reject_unknown_user(app: dict[str, Any], identifier: str, password: str, by_user_name: bool) -> None:
    """Raise ACCOUNT_IS_NOT_VERIFIED for the owner of a pending sign-up, else INVALID_CREDENTIALS.

    Only the newest pending entry is checked, so this costs one password verification, the
    same as a login to an existing account.
    """
    newest = None
    if not by_user_name and setting(app, "signupFlow") != "none":
        # A sign-up that CosyncJWT left pending keeps its password on the `signups` document.
        record, entries = overlap.both(
            lambda: db.collection(db.SIGNUPS).find_one({"appId": app["appId"], "handle": identifier}, LEGACY_FIELDS),
            lambda: pending_entries(app["appId"], identifier, {"password": 1, "createdAt": 1}),
        )
        entries = with_legacy_entry(entries, record)
        newest = entries[0].get("password") if entries else None
    if newest and verify_password(password, newest)[0]:
        raise ApiError(errors.ACCOUNT_IS_NOT_VERIFIED, "sign-up not completed")
    if not newest:
        burn_password_check()
    # Recorded like a wrong password, which also keeps the time of both cases equal.
    audit.record(app["appId"], "login", "error", identifier, code=errors.INVALID_CREDENTIALS.code)
    raise ApiError(errors.INVALID_CREDENTIALS, "no such account or wrong password")
