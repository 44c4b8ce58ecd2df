"""Phone numbers and SMS codes: `setPhone`, `verifyPhone`, the codes of SMS login, and the
operator's test SMS (`testAppTwilio`).

An SMS code is six digits from `secrets`, stored as a keyed hash in `smscodes` (one document
per user and purpose, so a new code replaces the previous one), valid for
`SMS_CODE_LIFETIME`, and dead after `MAX_FAILED_ATTEMPTS` guesses, counted before comparing.
A new phone number is kept beside its code and reaches the user's document only when the code
is verified, so an unverified number never replaces a verified one.
"""

from __future__ import annotations

import datetime
import re
import uuid
from typing import Any

from cosync import audit, counters, db, errors, ratelimit, templates
from cosync.auth import Caller
from cosync.crypto import codes_equal, hash_code
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.secrets import get_secrets
from cosync.services.apps import load_active_app, load_app, setting
from cosync.services.signup import new_code
from cosync.services.users import load_user
from cosync.sms import SmsError, masked, send_sms
from cosync.validation import optional_text, require_code, require_text

SMS_CODE_LIFETIME = datetime.timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5
PHONE_PURPOSE = "phone"
LOGIN_PURPOSE = "sms-login"

# E.164: a `+`, then at most 15 digits, the first not 0. At least 7 digits, the shortest
# numbers in use.
E164_PATTERN = re.compile(r"\+[1-9][0-9]{6,14}")
SEPARATORS = re.compile(r"[\s().-]")


def normalise_phone(value: str) -> str:
    """Return `value` as an E.164 number; raise INVALID_DATA when it is not one.

    The Swift SDK sends form bodies without percent-encoding, so the leading `+` arrives as a
    space: a value that starts with a space and then a digit is read as starting with `+`.
    Spaces, dots, dashes and brackets between digits are dropped.
    """
    if value[:1].isspace() and value.lstrip()[:1].isdigit():
        value = "+" + value.lstrip()
    phone = SEPARATORS.sub("", value)
    if not E164_PATTERN.fullmatch(phone):
        raise ApiError(errors.INVALID_DATA, "phone is not an E.164 number such as +14155550100")
    return phone


def active_user(caller: Caller) -> dict[str, Any]:
    """Return the caller's user; raise USER_IS_SUSPENDED (404) unless the account is active."""
    user = load_user(caller)
    if user.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")
    return user


def _code_id(purpose: str, app_id: str, handle: str) -> str:
    return f"{purpose}:{app_id}:{handle}"


def _code_hash(purpose: str, app_id: str, handle: str, nonce: str, code: str) -> str:
    # The nonce is hashed in, so a code only ever matches the request that issued it.
    return hash_code(get_secrets().encryption_key, purpose, app_id, handle, f"{nonce}:{code}")


def send_sms_code(
    app: dict[str, Any], user: dict[str, Any], purpose: str, phone: str, nonce: str, address: str | None
) -> None:
    """Send a new code to `phone` and store it for `check_sms_code`, replacing any earlier one.

    Raises the rate-limit error past `SMS_PER_USER` or `SMS_PER_ADDRESS`, and
    INTERNAL_SERVER_ERROR when the SMS cannot be sent; then no code is stored.
    """
    app_id, handle = app["appId"], user["handle"]
    ratelimit.hit(ratelimit.SMS_PER_USER, f"{app_id}:{handle}")
    if address is not None:
        ratelimit.hit(ratelimit.SMS_PER_ADDRESS, f"{app_id}:{address}")

    code = new_code()
    now = utc_now()
    document = {
        "_id": _code_id(purpose, app_id, handle),
        "appId": app_id,
        "handle": handle,
        "purpose": purpose,
        "phone": phone,
        "nonce": nonce,
        "codeHash": _code_hash(purpose, app_id, handle, nonce, code),
        "createdAt": now,
        "expiresAt": now + SMS_CODE_LIFETIME,
    }
    codes = db.collection(db.SMS_CODES)
    codes.replace_one({"_id": document["_id"]}, document, upsert=True)
    template = templates.find_template(db.get_database(), app_id, templates.SMS, user.get("locale"))
    text = templates.render(template.html, {"CODE": code, "APP_NAME": str(app.get("name", "")), "HANDLE": handle}, escape=False)
    try:
        send_sms(app, phone, text)
    except SmsError as error:
        codes.delete_one({"_id": document["_id"], "nonce": nonce})
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"SMS to {masked(phone)} failed: {error}") from None


def check_sms_code(app_id: str, handle: str, purpose: str, code: str, nonce: str | None = None) -> dict[str, Any] | None:
    """Return the stored code document when `code` matches it, else None.

    A code that expired, was replaced (its nonce differs from `nonce`) or has used up its
    attempts matches nothing. The attempt is counted before comparing, so parallel guesses
    cannot exceed the limit.
    """
    stored = db.collection(db.SMS_CODES).find_one({"_id": _code_id(purpose, app_id, handle)})
    if stored is None or stored["expiresAt"] <= utc_now():
        return None
    if nonce is not None and stored.get("nonce") != nonce:
        return None
    if not counters.claim(f"{purpose}-code:{stored['nonce']}", MAX_FAILED_ATTEMPTS, stored["expiresAt"]):
        return None
    expected = _code_hash(purpose, app_id, handle, stored["nonce"], code)
    if not codes_equal(stored["codeHash"], expected):
        return None
    return stored


def discard_sms_code(app_id: str, handle: str, purpose: str) -> None:
    db.collection(db.SMS_CODES).delete_one({"_id": _code_id(purpose, app_id, handle)})


def _check_phone_free(app_id: str, phone: str, handle: str | None = None) -> None:
    query: dict[str, Any] = {"appId": app_id, "phone": phone, "phoneVerified": True}
    if handle is not None:
        query["handle"] = {"$ne": handle}
    if db.collection(db.USERS).find_one(query, {"_id": 1}) is not None:
        raise ApiError(errors.PHONE_NUMBER_ALREADY_IN_USE, "another account verified this phone number")


def set_phone(caller: Caller, body: dict[str, Any], address: str) -> bool:
    """Send a verification code to a new phone number (`setPhone`)."""
    phone = normalise_phone(require_text(body, "phone"))
    app = load_active_app(caller.app_id)
    if setting(app, "twoFactorVerification") != "phone":
        raise ApiError(errors.APP_NO_PHONE_TWO_FACTOR, "the app's two-factor method is not phone")
    # As in CosyncJWT, a number the caller verified already is "in use" too.
    _check_phone_free(app["appId"], phone)
    user = active_user(caller)
    send_sms_code(app, user, PHONE_PURPOSE, phone, uuid.uuid4().hex, address)
    audit.record(app["appId"], "setPhone", "success", user["handle"], phone=masked(phone))
    return True


def verify_phone(caller: Caller, body: dict[str, Any], address: str) -> bool:
    """Check the code sent by `setPhone` and store the number as verified (`verifyPhone`)."""
    code = require_code(body)
    claimed_phone = optional_text(body, "phone")
    app = load_active_app(caller.app_id)
    user = active_user(caller)
    app_id, handle = app["appId"], user["handle"]
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{address}")

    stored = check_sms_code(app_id, handle, PHONE_PURPOSE, code)
    if stored is None or (claimed_phone is not None and normalise_phone(claimed_phone) != stored["phone"]):
        audit.record(app_id, "verifyPhone", "error", handle, code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "wrong, expired or used-up phone code")
    # NOTE: two accounts verifying one number at the same moment can both succeed; FerretDB
    # has no partial unique index to prevent it.
    _check_phone_free(app_id, stored["phone"], handle)
    db.collection(db.USERS).update_one(
        {"_id": user["_id"]},
        {"$set": {"phone": stored["phone"], "phoneVerified": True, "updatedAt": utc_now()}},
    )
    discard_sms_code(app_id, handle, PHONE_PURPOSE)
    audit.record(app_id, "verifyPhone", "success", handle, phone=masked(stored["phone"]))
    return True


def send_test_sms(body: dict[str, Any]) -> dict[str, Any]:
    """Send one SMS with a fresh code through the app's Twilio account (`testAppTwilio`).

    Returns the code, where the message went and Twilio's message id and status. A Twilio
    rejection raises `ProviderError`, whose body carries Twilio's error.
    """
    app = load_app(require_text(body, "appId"))
    phone = normalise_phone(require_text(body, "phone"))
    handle = optional_text(body, "handle") or ""
    locale = (optional_text(body, "locale") or templates.DEFAULT_LOCALE).upper()

    code = new_code()
    template = templates.find_template(db.get_database(), app["appId"], templates.SMS, locale)
    text = templates.render(template.html, {"CODE": code, "APP_NAME": str(app.get("name", "")), "HANDLE": handle}, escape=False)
    try:
        receipt = send_sms(app, phone, text)
    except SmsError as error:
        audit.record(app["appId"], "testAppTwilio", "error", log_type="app", phone=masked(phone), provider=error.provider)
        raise ProviderError(str(error), error.provider) from None
    audit.record(app["appId"], "testAppTwilio", "success", log_type="app", phone=masked(phone), channel=receipt.channel)
    return {"twoFactorCode": int(code), "channel": receipt.channel, "sid": receipt.sid, "status": receipt.status}


class ProviderError(ApiError):
    """An SMS the operator asked for failed; the body adds Twilio's error when it sent one."""

    def __init__(self, detail: str, provider: dict[str, Any] | None) -> None:
        super().__init__(errors.INTERNAL_SERVER_ERROR, detail)
        self.provider = provider

    def body(self) -> dict[str, object]:
        return {**super().body(), "provider": self.provider}
