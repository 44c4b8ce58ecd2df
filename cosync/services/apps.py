"""Apps: creation, lookup, the status checks every route makes, and the views of an app."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo.errors import DuplicateKeyError

from cosync import app_cache, audit, db, errors
from cosync.dates import iso, utc_now
from cosync.errors import ApiError
from cosync.keys import generate_app_key_pair, seal_app_key, unseal_app_key
from cosync.search import find_page, literal_pattern, parse_page, parse_search_text
from cosync.secrets import get_secrets
from cosync.templates import DEFAULT_LOCALE, default_template_documents
from cosync.tokens import UserJwtKey, issue_app_secret, issue_app_token
from cosync.crypto import encrypt_field

MAX_NAME_LENGTH = 200

# Schema defaults of the CosyncJWT `apps` collection, applied when a field is absent so that
# `getApplication` always returns the flags and password rules with their JSON types.
APP_DEFAULTS: dict[str, Any] = {
    "status": "active",
    "type": "development",
    "handle": "email",
    "jwtEnabled": False,
    "anonymousLoginEnabled": False,
    "userNamesEnabled": False,
    "appleLoginEnabled": False,
    "googleLoginEnabled": False,
    "emailExtension": False,
    "invitationEnabled": True,
    "signupEnabled": True,
    "signupFlow": "code",
    "twoFactorVerification": "none",
    "maxUsers": 0,
    "passwordFilter": False,
    "passwordMinLength": 5,
    "passwordMinUpper": 0,
    "passwordMinLower": 0,
    "passwordMinDigit": 0,
    "passwordMinSpecial": 0,
    "userJWTExpiration": 24,
    "metaData": [],
    "metaDataInvite": [],
    "locales": [DEFAULT_LOCALE],
    "appData": {},
}

# Never leave the server in an app view: keys, tokens, provider credentials.
SECRET_FIELDS = frozenset({
    "appPrivateKey",
    "appSecret",
    "appPublicKeyPrevious",
    "appRetiredKeys",
    "TWILIOAccountSid",
    "TWILIOToken",
    "TWILIOPhoneNumber",
    "emailExtensionAPIKey",
})

# Also withheld from the end-user view, as the reference server does.
END_USER_HIDDEN_FIELDS = SECRET_FIELDS | {"_id", "__v", "appId", "appToken", "appPublicKey", "developerUid", "type"}

ADMIN_HIDDEN_FIELDS = SECRET_FIELDS | {"_id", "__v"}


def load_app(app_id: str) -> dict[str, Any]:
    """Return the app document, from this worker's cache when it is fresh (see
    `cosync.app_cache`); raise APP_NOT_FOUND (401) when there is none."""
    app = app_cache.cached(app_id, "app", lambda: db.collection(db.APPS).find_one({"appId": app_id}))
    if app is None:
        raise ApiError(errors.APP_NOT_FOUND, f"no app {app_id}")
    return app


def check_app_active(app: dict[str, Any]) -> None:
    """Raise APP_IS_SUSPENDED (402) or APP_IS_MIGRATED (413) for an app that may not serve users."""
    status = app.get("status", "active")
    if status in ("inactive", "suspended"):
        raise ApiError(errors.APP_IS_SUSPENDED, f"app {app['appId']} is {status}")
    if status == "migrated":
        raise ApiError(errors.APP_IS_MIGRATED, f"app {app['appId']} is migrated")


def load_active_app(app_id: str) -> dict[str, Any]:
    app = load_app(app_id)
    check_app_active(app)
    return app


def setting(app: dict[str, Any], name: str) -> Any:
    """Return an app setting, or its CosyncJWT schema default when the document lacks it."""
    value = app.get(name)
    return APP_DEFAULTS.get(name) if value is None else value


def with_defaults(app: dict[str, Any]) -> dict[str, Any]:
    return {**APP_DEFAULTS, **{key: value for key, value in app.items() if value is not None}}


def _serialise(document: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    return {key: iso(value) for key, value in document.items() if key not in hidden}


def end_user_view(app: dict[str, Any]) -> dict[str, Any]:
    """The app as `getApplication` returns it: settings and rules, no keys or credentials."""
    return _serialise(with_defaults(app), END_USER_HIDDEN_FIELDS)


def application(app_id: str) -> dict[str, Any]:
    """Return the app for `getApplication`; like the reference server, a suspended app is shown."""
    return end_user_view(load_app(app_id))


def admin_view(app: dict[str, Any]) -> dict[str, Any]:
    """The app as operator routes return it: with app token and public key, no secrets."""
    view = _serialise(with_defaults(app), ADMIN_HIDDEN_FIELDS)
    if app.get("appPublicKey"):
        view["appPublicKey"] = unseal_app_key(
            get_secrets().encryption_key, app["appPublicKey"], app["appId"], "appPublicKey"
        )
    return view


def signing_key(app: dict[str, Any]) -> UserJwtKey:
    """Return the key that signs the app's user JWTs."""
    private_key64 = unseal_app_key(
        get_secrets().encryption_key, app["appPrivateKey"], app["appId"], "appPrivateKey"
    )
    return UserJwtKey(private_key64=private_key64)


def validate_app_name(name: Any) -> str:
    if name is None or (isinstance(name, str) and not name.strip()):
        raise ApiError(errors.MISSING_PARAM, "app name is required")
    if not isinstance(name, str):
        raise ApiError(errors.INVALID_DATA, "app name must be a string")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(character) < 32 for character in name):
        raise ApiError(errors.INVALID_DATA, "app name is too long or contains control characters")
    return name


def create_app(name: Any, jwt_enabled: Any = False) -> dict[str, Any]:
    """Create an app with its key pair, tokens and default e-mail templates.

    Everything is stored before the response is returned, so a client never sees an app id that
    does not exist yet.
    """
    name = validate_app_name(name)
    if jwt_enabled in ("true", "false"):
        jwt_enabled = jwt_enabled == "true"
    if not isinstance(jwt_enabled, bool):
        raise ApiError(errors.INVALID_DATA, "jwtEnabled must be true or false")
    apps = db.collection(db.APPS)
    if apps.find_one({"name": name}, {"_id": 1}) is not None:
        raise ApiError(errors.INVALID_DATA, f"an app named {name!r} already exists")

    app_id = uuid.uuid4().hex
    secret = get_secrets().encryption_key
    private_key64, public_key64 = generate_app_key_pair()
    app_token = issue_app_token(app_id)
    now = utc_now()
    # The fields the reference server sets at creation; the response repeats them.
    initial = {
        "name": name,
        "appId": app_id,
        "appToken": app_token,
        "handle": "email",
        "status": "active",
        "locales": [DEFAULT_LOCALE],
        "invitationEnabled": True,
        "signupEnabled": True,
        "metaDataEmail": True,
        "jwtEnabled": jwt_enabled,
        "twoFactorVerification": "none",
    }
    document = {
        **initial,
        "appPublicKey": seal_app_key(secret, public_key64, app_id, "appPublicKey"),
        "appPrivateKey": seal_app_key(secret, private_key64, app_id, "appPrivateKey"),
        "appSecret": encrypt_field(secret, issue_app_secret(app_id), f"apps.appSecret:{app_id}"),
        "createdAt": now,
        "updatedAt": now,
    }
    try:
        apps.insert_one(document)
    except DuplicateKeyError:
        # The unique name index decides between parallel requests for one name.
        raise ApiError(errors.INVALID_DATA, f"an app named {name!r} already exists") from None
    db.collection(db.EMAIL_TEMPLATES).insert_many(default_template_documents(app_id, DEFAULT_LOCALE, now))
    audit.record_operator(app_id, "create")

    return {**initial, "appPublicKey": public_key64, "createdAt": iso(now), "updatedAt": iso(now)}


def list_apps() -> list[dict[str, Any]]:
    """Return every app, by name, as operator routes show it."""
    return [admin_view(app) for app in db.collection(db.APPS).find({}).sort("name", 1)]


def search_apps(name: Any = None, exact: Any = None, offset: Any = None, limit: Any = None) -> list[dict[str, Any]]:
    """Return one page of apps whose name contains `name`, newest first.

    The match ignores case unless `exact` is "true" (or True), which asks for the whole name,
    case-sensitively. `name` is matched literally: its regular-expression characters are escaped.
    """
    page = parse_page({"offset": offset, "limit": limit})
    query: dict[str, Any] = {}
    name = parse_search_text(name)
    if name is not None:
        if exact in (True, "true"):
            query["name"] = name
        else:
            query["name"] = {"$regex": literal_pattern(name), "$options": "i"}
    found = find_page(db.collection(db.APPS), query, [("createdAt", -1), ("_id", -1)], page)
    return [admin_view(app) for app in found.items]
