"""Self sign-up with e-mail verification: `signup` and `completeSignup`.

A pending sign-up is one `signups` document per (app, handle). Each call to `signup` adds an
entry holding its own code (stored as a keyed hash), password hash, metadata and expiry, so a
repeated sign-up for someone else's address never replaces the password that the address
owner's code unlocks. The newest `MAX_PENDING_CODES` entries are kept. Verification attempts
are counted per document; after `MAX_FAILED_ATTEMPTS` every pending code is dead and the user
must sign up again, which starts a new count.
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from cosync import audit, db, errors, templates
from cosync.crypto import codes_equal, hash_code, hash_password
from cosync.errors import ApiError
from cosync.mail import MailError
from cosync.messages import send_template, send_template_or_log
from cosync.secrets import get_secrets
from cosync.services.apps import load_active_app, setting, signing_key, utc_now
from cosync.services.sessions import issue_session
from cosync.tokens import user_jwt_claims
from cosync.validation import parse_locale, parse_metadata, require_code, require_email_handle, require_password

SIGNUP_CODE_LIFETIME = datetime.timedelta(hours=48)
MAX_PENDING_CODES = 3
MAX_FAILED_ATTEMPTS = 5
CODE_PURPOSE = "signup"
MAX_UPDATE_RETRIES = 5


def new_code() -> str:
    """Return a six-digit code from the operating system's CSPRNG, 100000 to 999999."""
    return str(100000 + secrets.randbelow(900000))


def _check_signup_enabled(app: dict[str, Any]) -> None:
    if not setting(app, "signupEnabled"):
        raise ApiError(errors.APP_ISNOT_SIGNUPABLE, f"sign-up is off for app {app['appId']}")


def signup(app_id: str, body: dict[str, Any]) -> Any:
    """Start a sign-up: e-mail a code (flow `code`) or create the user at once (flow `none`)."""
    app = load_active_app(app_id)
    _check_signup_enabled(app)
    handle = require_email_handle(body)
    password = require_password(body)
    locale = parse_locale(body, setting(app, "locales"))
    metadata = parse_metadata(body, setting(app, "metaData"))

    users = db.collection(db.USERS)
    if users.find_one({"appId": app_id, "handle": handle}, {"_id": 1}) is not None:
        audit.record(app_id, "signup", "error", handle, code=errors.HANDLE_ALREADY_REGISTERED.code)
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "handle already has an account")

    flow = setting(app, "signupFlow")
    if flow == "none":
        return _signup_without_verification(app, handle, password, locale, metadata)
    if flow != "code":
        # TODO: the `link` flow (e-mailed link and confirmation page) is not built yet.
        raise ApiError(errors.INVALID_DATA, f"sign-up flow {flow!r} is not supported yet")

    code = new_code()
    _add_pending_code(app_id, handle, code, hash_password(password), locale, metadata)
    try:
        send_template(app, templates.SIGN_UP, handle, locale, {"HANDLE": handle, "CODE": code})
    except MailError as error:
        audit.record(app_id, "signup", "error", handle, reason="sign-up mail failed")
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"sign-up mail failed: {error}") from None
    audit.record(app_id, "signup", "success", handle)
    return True


def _add_pending_code(
    app_id: str, handle: str, code: str, password_hash: str, locale: str, metadata: dict[str, Any]
) -> None:
    """Add a code entry to the handle's pending sign-up, creating or reviving the document.

    FerretDB 1.x ignores `$slice` in `$push`, so the entry list is rewritten under an
    optimistic `revision` check instead.
    """
    signups = db.collection(db.SIGNUPS)
    secret = get_secrets().encryption_key
    for _ in range(MAX_UPDATE_RETRIES):
        now = utc_now()
        entry = {
            "codeHash": hash_code(secret, CODE_PURPOSE, app_id, handle, code),
            "password": password_hash,
            "locale": locale,
            "metaData": metadata,
            "createdAt": now,
            "expiresAt": now + SIGNUP_CODE_LIFETIME,
        }
        fields = {
            "status": "pending",
            "locale": locale,
            "metaData": metadata,
            "updatedAt": now,
            "expiresAt": entry["expiresAt"],
        }
        current = signups.find_one({"appId": app_id, "handle": handle})
        if current is None:
            try:
                signups.insert_one({
                    "appId": app_id, "handle": handle, "codes": [entry], "failedAttempts": 0,
                    "revision": 1, "createdAt": now, **fields,
                })
                return
            except DuplicateKeyError:
                continue
        revived = current.get("status") != "pending" or current.get("failedAttempts", 0) >= MAX_FAILED_ATTEMPTS
        kept = [] if revived else [item for item in current.get("codes") or [] if isinstance(item, dict)]
        update = {
            **fields,
            "codes": (kept + [entry])[-MAX_PENDING_CODES:],
            "revision": current.get("revision", 0) + 1,
        }
        if revived:
            update["failedAttempts"] = 0
        result = signups.update_one(
            {"_id": current["_id"], "revision": current.get("revision")}, {"$set": update, "$unset": {"code": "", "password": ""}}
        )
        if result.modified_count == 1:
            return
    raise ApiError(errors.INTERNAL_SERVER_ERROR, "sign-up record kept changing; gave up")


def _signup_without_verification(
    app: dict[str, Any], handle: str, password: str, locale: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    user = _new_user(app["appId"], handle, hash_password(password), locale, metadata)
    if user_jwt_claims(user, app, 0) is None:
        raise ApiError(errors.INVALID_DATA, "user metadata lacks a required JWT field")
    _insert_user(user)
    db.collection(db.SIGNUPS).update_one(
        {"appId": app["appId"], "handle": handle},
        {"$set": {"status": "active", "locale": locale, "metaData": metadata, "updatedAt": user["createdAt"]},
         "$setOnInsert": {"createdAt": user["createdAt"]},
         "$unset": {"codes": "", "code": "", "password": "", "expiresAt": ""}},
        upsert=True,
    )
    session = issue_session(user, app, signing_key(app))
    send_template_or_log(app, templates.SIGN_UP_SUCCESS, handle, locale, {"HANDLE": handle})
    audit.record(app["appId"], "signup", "success", handle, flow="none")
    # The reference server returns the sign-up code here as a number; this flow has no code to
    # verify, so a fresh one is returned only to keep the response shape.
    return {**session, "code": int(new_code())}


def _new_user(app_id: str, handle: str, password_hash: str, locale: str, metadata: dict[str, Any]) -> dict[str, Any]:
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
    }


def _insert_user(user: dict[str, Any]) -> None:
    try:
        db.collection(db.USERS).insert_one(user)
    except DuplicateKeyError:
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "handle already has an account") from None


def complete_signup(app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Verify a sign-up code and create the user; return the session tokens."""
    app = load_active_app(app_id)
    _check_signup_enabled(app)
    handle = require_email_handle(body)
    code = require_code(body)

    signups = db.collection(db.SIGNUPS)
    record = _take_attempt(app_id, handle)
    entry = _matching_entry(record, app_id, handle, code)
    if entry is None:
        audit.record(app_id, "completeSignup", "error", handle, code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "wrong sign-up code")
    if entry["expiresAt"] <= utc_now():
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "sign-up code expired")

    locale = entry.get("locale") or "EN"
    user = _new_user(app_id, handle, entry["password"], locale, entry.get("metaData") or {})
    if user_jwt_claims(user, app, 0) is None:
        raise ApiError(errors.INVALID_DATA, "user metadata lacks a required JWT field")
    _insert_user(user)
    signups.update_one(
        {"_id": record["_id"]},
        {"$set": {"status": "verified", "locale": locale, "metaData": user["metaData"], "updatedAt": user["createdAt"]},
         "$unset": {"codes": "", "expiresAt": ""}},
    )
    session = issue_session(user, app, signing_key(app))
    send_template_or_log(app, templates.SIGN_UP_SUCCESS, handle, locale, {"HANDLE": handle})
    audit.record(app_id, "completeSignup", "success", handle)
    return session


def _take_attempt(app_id: str, handle: str) -> dict[str, Any]:
    """Count one verification attempt on the pending sign-up and return it.

    The counter is raised before the code is compared, in one atomic update, so parallel
    guesses cannot exceed the limit.
    """
    signups = db.collection(db.SIGNUPS)
    record = signups.find_one_and_update(
        {
            "appId": app_id,
            "handle": handle,
            "status": "pending",
            "$or": [{"failedAttempts": {"$lt": MAX_FAILED_ATTEMPTS}}, {"failedAttempts": {"$exists": False}}],
        },
        {"$inc": {"failedAttempts": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if record is not None:
        return record
    current = signups.find_one({"appId": app_id, "handle": handle}, {"status": 1})
    if current is None:
        raise ApiError(errors.INVALID_DATA, "no pending sign-up for this handle")
    if current.get("status") == "verified":
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "sign-up already completed")
    if current.get("status") == "pending":
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "too many wrong codes; sign up again")
    raise ApiError(errors.INVALID_DATA, f"sign-up status is {current.get('status')!r}")


def _matching_entry(record: dict[str, Any], app_id: str, handle: str, code: str) -> dict[str, Any] | None:
    expected = hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code)
    match = None
    # Compare with every entry, so the time taken does not depend on which one matches.
    for entry in record.get("codes") or []:
        if isinstance(entry, dict) and isinstance(entry.get("codeHash"), str):
            if codes_equal(entry["codeHash"], expected):
                match = entry
    return match
