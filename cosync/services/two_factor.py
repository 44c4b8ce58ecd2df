"""Two-factor login: the login token, `loginComplete`, and turning the second factor on and
off (`setTwoFactorGoogleVerification`, `setTwoFactorPhoneVerification`).

A password login of a user with a second factor returns a login token instead of a session.
The token has scope "login", names its method ("google" or "phone"), carries the user's
token version and expires after 10 minutes. `loginComplete` accepts nothing else, and each
login token allows `MAX_FAILED_ATTEMPTS` codes and one success.

TOTP secrets are stored encrypted (AES-256-GCM) in `users.googleSecretKey`; a plain base32
value written by CosyncJWT is still read. A TOTP code is accepted once: its time step is
claimed in `counters`, and steps up to the last accepted one are refused.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

from cosync import audit, counters, db, errors, ratelimit, totp
from cosync.auth import Caller
from cosync.crypto import GCM_PREFIX, decrypt_field, encrypt_field
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.secrets import get_secrets
from cosync.services.apps import load_active_app, setting, signing_key
from cosync.services.phone import LOGIN_PURPOSE, active_user, check_sms_code, discard_sms_code, send_sms_code
from cosync.services.sessions import issue_session
from cosync.tokens import InvalidToken, decode_login_token, issue_login_token
from cosync.validation import require_text

GOOGLE = "google"
PHONE = "phone"
NONE = "none"
MAX_FAILED_ATTEMPTS = 5
CODE_PATTERN = re.compile(r"[0-9]{1,8}")


def _google_active(app: dict[str, Any], user: dict[str, Any]) -> bool:
    return (
        setting(app, "twoFactorVerification") == GOOGLE
        and user.get("twoFactorGoogleVerification") is True
        and bool(user.get("googleSecretKey"))
    )


def _phone_active(app: dict[str, Any], user: dict[str, Any]) -> bool:
    # Unlike CosyncJWT, the user's phone flag counts only while the app's method is phone.
    return (
        setting(app, "twoFactorVerification") == PHONE
        and user.get("twoFactorPhoneVerification") is True
        and user.get("phoneVerified") is True
        and bool(user.get("phone"))
    )


def start_login(app: dict[str, Any], user: dict[str, Any], address: str | None = None) -> dict[str, str] | None:
    """Return `{"login-token": ...}` when the user must give a second factor, else None.

    For phone two-factor this sends the SMS code first. `address` is the client address for
    the per-address SMS limit.
    """
    if _google_active(app, user):
        method = GOOGLE
    elif _phone_active(app, user):
        method = PHONE
    else:
        return None
    token, token_id = issue_login_token(user["handle"], app["appId"], int(user.get("tokenVersion") or 0), method)
    if method == PHONE:
        send_sms_code(app, user, LOGIN_PURPOSE, user["phone"], token_id, address)
    audit.record(app["appId"], "login", "success", user["handle"], secondFactor=method)
    return {"login-token": token}


def _require_login_code(body: dict[str, Any]) -> str:
    """Return the submitted code as digits; spaces and dashes ("123 456") are dropped."""
    value = body.get("code")
    if value is None or value == "":
        raise ApiError(errors.MISSING_PARAM, "field code is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(errors.INVALID_DATA, "field code must be numeric")
    text = re.sub(r"[\s-]", "", str(value))
    if not CODE_PATTERN.fullmatch(text):
        raise ApiError(errors.INVALID_DATA, "field code must be numeric")
    return text.zfill(totp.DIGITS)


def _reject(app_id: str, handle: str | None, detail: str) -> ApiError:
    audit.record(app_id, "loginComplete", "error", handle, code=errors.INVALID_CREDENTIALS.code)
    return ApiError(errors.INVALID_CREDENTIALS, detail)


def login_complete(app_id: str, body: dict[str, Any], address: str) -> dict[str, str]:
    """Check the second factor for a login token and return the session (`loginComplete`)."""
    login_token = require_text(body, "loginToken")
    code = _require_login_code(body)
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{address}")
    try:
        claims = decode_login_token(login_token.strip())
    except InvalidToken as error:
        raise _reject(app_id, None, f"login token rejected: {error}") from None
    if claims["appId"] != app_id:
        raise _reject(app_id, None, "login token belongs to another app")

    app = load_active_app(app_id)
    handle = claims["handle"]
    user = db.collection(db.USERS).find_one({"appId": app_id, "handle": handle})
    if user is None or int(user.get("tokenVersion") or 0) != claims["tokenVersion"]:
        raise _reject(app_id, handle, "user deleted or login token revoked")
    if user.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")
    method = claims["method"]
    still_on = _google_active(app, user) if method == GOOGLE else (method == PHONE and _phone_active(app, user))
    if not still_on:
        raise _reject(app_id, handle, f"second factor {method!r} is no longer on for this user")

    ratelimit.hit(ratelimit.TWO_FACTOR_CHECKS_PER_USER, f"{app_id}:{handle}")
    expires_at = datetime.datetime.fromtimestamp(claims["exp"], datetime.timezone.utc)
    if not counters.claim(f"login-token:{claims['jti']}", MAX_FAILED_ATTEMPTS, expires_at):
        raise _reject(app_id, handle, "login token has no attempts left; log in again")
    if method == GOOGLE:
        accepted = _accept_totp(app_id, user, code)
    else:
        accepted = check_sms_code(app_id, handle, LOGIN_PURPOSE, code, nonce=claims["jti"]) is not None
    if not accepted:
        raise _reject(app_id, handle, "wrong second-factor code")
    if not counters.claim(f"login-token-used:{claims['jti']}", 1, expires_at):
        raise _reject(app_id, handle, "login token was used already")

    session = issue_session(user, app, signing_key(app))
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"lastLogin": utc_now()}})
    if method == PHONE:
        discard_sms_code(app_id, handle, LOGIN_PURPOSE)
    audit.record(app_id, "loginComplete", "success", handle, secondFactor=method)
    return session


def _totp_secret_context(app_id: str, handle: str) -> str:
    return f"users.googleSecretKey:{app_id}:{handle}"


def _stored_totp_key(app_id: str, user: dict[str, Any]) -> bytes:
    stored = user["googleSecretKey"]
    if stored.startswith(GCM_PREFIX):
        stored = decrypt_field(get_secrets().encryption_key, stored, _totp_secret_context(app_id, user["handle"]))
    # A value without the prefix is a plain base32 secret written by CosyncJWT.
    return totp.secret_key(stored)


def _accept_totp(app_id: str, user: dict[str, Any], code: str) -> bool:
    """Check a TOTP code and claim its time step, so that the same code is never accepted twice."""
    step = totp.matching_step(_stored_totp_key(app_id, user), code, time.time())
    if step is None or step <= int(user.get("googleLastStep") or -1):
        return False
    # The step outlives the window by a period, so a claim is never purged while it matters.
    expires_at = utc_now() + datetime.timedelta(seconds=(totp.WINDOW_STEPS + 2) * totp.PERIOD_SECONDS)
    if not counters.claim(f"totp-step:{app_id}:{user['handle']}:{step}", 1, expires_at):
        return False
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$max": {"googleLastStep": step}})
    return True


def parse_switch(body: dict[str, Any]) -> bool:
    """Read `twoFactor`: on for JSON `true` or the string "true" (any case), off otherwise."""
    value = body.get("twoFactor")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def set_two_factor(caller: Caller, body: dict[str, Any], route_method: str) -> Any:
    """Turn the app's second factor on or off for the caller.

    Both routes act on the app's method, as in CosyncJWT; `route_method` only picks the error
    for an app without two-factor (408 for the Google route, 409 for the phone route).
    """
    enable = parse_switch(body)
    app = load_active_app(caller.app_id)
    mode = setting(app, "twoFactorVerification")
    if mode == NONE:
        missing = errors.APP_NO_GOOGLE_TWO_FACTOR if route_method == GOOGLE else errors.APP_NO_PHONE_TWO_FACTOR
        raise ApiError(missing, "the app has no two-factor method")
    user = active_user(caller)
    action = "setTwoFactorGoogleVerification" if route_method == GOOGLE else "setTwoFactorPhoneVerification"
    if mode not in (GOOGLE, PHONE):
        raise ApiError(errors.INVALID_DATA, f"the app's two-factor method {mode!r} is unknown")

    now = utc_now()
    users = db.collection(db.USERS)
    if not enable:
        flag = "twoFactorGoogleVerification" if mode == GOOGLE else "twoFactorPhoneVerification"
        change: dict[str, Any] = {"$set": {flag: False, "updatedAt": now}}
        if mode == GOOGLE:
            change["$unset"] = {"googleSecretKey": "", "googleLastStep": ""}
        users.update_one({"_id": user["_id"]}, change)
        audit.record(app["appId"], action, "success", user["handle"], twoFactor=False)
        return True
    if mode == PHONE:
        if user.get("phoneVerified") is not True or not user.get("phone"):
            raise ApiError(errors.USER_NO_VERIFIED_PHONE, "verify a phone number first")
        users.update_one({"_id": user["_id"]}, {"$set": {"twoFactorPhoneVerification": True, "updatedAt": now}})
        audit.record(app["appId"], action, "success", user["handle"], twoFactor=True)
        return True
    return _enable_google(app, user, action)


def _enable_google(app: dict[str, Any], user: dict[str, Any], action: str) -> dict[str, str]:
    """Store a new TOTP secret and return it with its QR code (the only time it leaves the server)."""
    secret = totp.new_secret()
    sealed = encrypt_field(get_secrets().encryption_key, secret, _totp_secret_context(app["appId"], user["handle"]))
    db.collection(db.USERS).update_one(
        {"_id": user["_id"]},
        {"$set": {"googleSecretKey": sealed, "twoFactorGoogleVerification": True, "updatedAt": utc_now()},
         "$unset": {"googleLastStep": ""}},
    )
    issuer = str(app.get("googleAppName") or app.get("name") or "CosyncJWT")
    uri = totp.provisioning_uri(issuer, user["handle"], secret)
    audit.record(app["appId"], action, "success", user["handle"], twoFactor=True)
    return {"googleSecretKey": secret, "QRDataImage": totp.qr_png_data_url(uri)}
