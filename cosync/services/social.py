"""Sign in with Apple or Google: `socialLogin` and `socialSignup`.

The app enables each provider and lists the client ids its tokens are issued to
(`appleBundleId`, `googleClientId`, comma-separated). The ID token proves the provider's user
id (`sub`) and e-mail address; see `cosync.idtokens` for what is checked.

Differences from CosyncJWT: suspended or migrated apps and suspended users are refused, an
account is found by the provider's user id before the e-mail address, the handle is stored
lower-cased like every other handle, and socialSignup verifies the ID token before it reports
whether an account exists, so the app token alone does not reveal who has an account.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from cosync import audit, db, errors
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.idtokens import APPLE, GOOGLE, Identity, InvalidIdToken, KeySetUnavailable, verify_id_token
from cosync.services.accounts import insert_user, new_user, welcome
from cosync.services.apps import load_active_app, setting, signing_key
from cosync.services.sessions import issue_session
from cosync.validation import (
    normalise_handle,
    parse_locale,
    parse_registration_metadata,
    require_email_handle,
    require_text,
)

# Per provider: the app's on/off switch, its list of accepted client ids, and the error when
# either is missing.
PROVIDER_SETTINGS = {
    APPLE: ("appleLoginEnabled", "appleBundleId", errors.APP_ISNOT_APPLE_AUTHENTICATION),
    GOOGLE: ("googleLoginEnabled", "googleClientId", errors.APP_ISNOT_GOOGLE_AUTHENTICATION),
}
ACCOUNT_EXISTS = {APPLE: errors.APPLE_ACCOUNT_ALREADY_EXIST, GOOGLE: errors.GOOGLE_ACCOUNT_ALREADY_EXIST}


def _require_provider(body: dict[str, Any]) -> str:
    provider = require_text(body, "provider").strip().lower()
    if provider not in PROVIDER_SETTINGS:
        raise ApiError(errors.INVALID_DATA, f"provider {provider!r} is not apple or google")
    return provider


def _audiences(app: dict[str, Any], provider: str) -> list[str]:
    """Return the app's client ids for `provider`; raise 415 or 416 when sign-in is off."""
    enabled_field, ids_field, disabled = PROVIDER_SETTINGS[provider]
    ids = setting(app, ids_field)
    # CosyncJWT stores a comma-separated string, and a list of strings is accepted as well.
    if isinstance(ids, str):
        parts = ids.split(",")
    elif isinstance(ids, list):
        parts = ids
    else:
        parts = []
    audiences = [part.strip() for part in parts if isinstance(part, str) and part.strip()]
    if setting(app, enabled_field) is not True or not audiences:
        raise ApiError(disabled, f"{provider} sign-in is off or has no client ids for app {app['appId']}")
    return audiences


def verify_identity(app: dict[str, Any], provider: str, token: str, action: str) -> Identity:
    """Verify an ID token for the app's client ids; raise 415/416, 613 or 500 (no key set)."""
    try:
        return verify_id_token(provider, token, _audiences(app, provider))
    except InvalidIdToken as error:
        audit.record(app["appId"], action, "error", provider=provider, code=errors.TOKEN_IS_INVALID.code)
        raise ApiError(errors.TOKEN_IS_INVALID, f"{provider} ID token rejected: {error}") from None
    except KeySetUnavailable as error:
        raise ApiError(errors.INTERNAL_SERVER_ERROR, str(error)) from None


def _account_exists(user: dict[str, Any]) -> ApiError:
    error = ACCOUNT_EXISTS.get(user.get("loginProvider"), errors.EMAIL_ACCOUNT_ALREADY_EXIST)
    return ApiError(error, f"handle has an account with provider {user.get('loginProvider')!r}")


def social_login(app_id: str, body: dict[str, Any]) -> dict[str, str]:
    """Log in the account that an Apple or Google ID token identifies."""
    token = require_text(body, "token")
    provider = _require_provider(body)
    app = load_active_app(app_id)
    identity = verify_identity(app, provider, token, "socialLogin")

    user = _find_account(app_id, provider, identity)
    if user is None:
        audit.record(app_id, "socialLogin", "error", identity.email, provider=provider, code=errors.ACCOUNT_NOT_EXIST.code)
        raise ApiError(errors.ACCOUNT_NOT_EXIST, f"no account for this {provider} user")
    if user.get("loginProvider") != provider:
        raise _account_exists(user)
    if user.get("socialUserId") not in (None, "", identity.subject):
        raise ApiError(errors.TOKEN_IS_INVALID, f"handle belongs to another {provider} user")
    if user.get("status", "active") != "active":
        audit.record(app_id, "socialLogin", "error", user["handle"], code=errors.USER_IS_SUSPENDED.code)
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")

    session = issue_session(user, app, signing_key(app))
    db.collection(db.USERS).update_one(
        {"_id": user["_id"]}, {"$set": {"lastLogin": utc_now(), "socialUserId": identity.subject}}
    )
    audit.record(app_id, "socialLogin", "success", user["handle"], provider=provider)
    return session


def _find_account(app_id: str, provider: str, identity: Identity) -> dict[str, Any] | None:
    users = db.collection(db.USERS)
    user = users.find_one({"appId": app_id, "loginProvider": provider, "socialUserId": identity.subject})
    if user is None and identity.email:
        user = users.find_one({"appId": app_id, "handle": identity.email.strip().lower()})
    return user


def social_signup(app_id: str, body: dict[str, Any]) -> dict[str, str]:
    """Create an account from an Apple or Google ID token whose e-mail address is `handle`."""
    token = require_text(body, "token")
    require_text(body, "handle")
    provider = _require_provider(body)
    handle = require_email_handle(body)
    app = load_active_app(app_id)
    locale = parse_locale(body, setting(app, "locales"))
    metadata = parse_registration_metadata(body, setting(app, "metaData"))
    identity = verify_identity(app, provider, token, "socialSignup")
    if identity.email is None or normalise_handle(identity.email) != handle:
        raise ApiError(errors.TOKEN_IS_INVALID, "ID token is for another e-mail address")

    users = db.collection(db.USERS)
    existing = users.find_one({"appId": app_id, "handle": handle})
    if existing is not None:
        audit.record(app_id, "socialSignup", "error", handle, provider=provider, code=errors.HANDLE_ALREADY_REGISTERED.code)
        raise _account_exists(existing)
    if users.find_one({"appId": app_id, "loginProvider": provider, "socialUserId": identity.subject}, {"_id": 1}):
        raise ApiError(ACCOUNT_EXISTS[provider], f"this {provider} user already has an account")

    user = new_user(app_id, handle, "", locale, metadata, loginProvider=provider, socialUserId=identity.subject)
    insert_user(app, user, missing_metadata=errors.INVALID_METADATA)
    _record_signup(app_id, handle, provider, locale, metadata, user["createdAt"])
    session = welcome(app, user)
    audit.record(app_id, "socialSignup", "success", handle, provider=provider)
    return session


def _record_signup(app_id: str, handle: str, provider: str, locale: str, metadata: dict[str, Any], now: Any) -> None:
    """Keep the `signups` record CosyncJWT writes for social accounts (operators list them)."""
    query = {"appId": app_id, "handle": handle}
    fields = {"status": "active", "signupProvider": provider, "locale": locale, "metaData": metadata,
              "password": "", "updatedAt": now}
    signups = db.collection(db.SIGNUPS)
    try:
        signups.update_one(query, {"$set": fields, "$setOnInsert": {"createdAt": now}, "$unset": {"expiresAt": ""}},
                           upsert=True)
    except DuplicateKeyError:
        # A parallel request inserted the record first; update the one it created.
        signups.update_one(query, {"$set": fields, "$unset": {"expiresAt": ""}})
