"""Changing an app: the generic field update, named settings and metadata definitions.

The generic update (`POST /api/app/update`) accepts only the fields in `UPDATABLE_FIELDS`.
Keys, tokens, ids, provider credentials, the status and the two-factor mode are never changed
that way: credentials and modes that need them go through a named setting, locales through
`email_templates.set_locales`. Every value is checked for type and range before anything is
stored, so a request with one bad field changes nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from pymongo.errors import DuplicateKeyError

from cosync import app_cache, audit, db, errors
from cosync.crypto import encrypt_field
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.secrets import get_secrets
from cosync.services.apps import admin_view, load_app, validate_app_name
from cosync.tokens import REGISTERED_CLAIMS
from cosync.validation import EMAIL_PATTERN, require_text

Parser = Callable[[Any, str], Any]

MAX_DEFINITIONS = 50
MAX_PATH_LENGTH = 200
TWILIO_FIELDS = ("TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber")
TWILIO_SID_PATTERN = re.compile(r"AC[0-9a-fA-F]{32}")
PHONE_PATTERN = re.compile(r"\+[1-9][0-9]{6,14}")
# Characters of a credential pasted into a setting: printable ASCII without spaces.
CREDENTIAL_PATTERN = re.compile(r"[\x21-\x7e]{1,200}")


def boolean(value: Any, name: str) -> bool:
    """Accept a JSON boolean, or "true"/"false" as form bodies and the CLI send them."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(errors.INVALID_DATA, f"{name} must be true or false")


def whole_number(minimum: int, maximum: int) -> Parser:
    def parse(value: Any, name: str) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,10}", value.strip()):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ApiError(errors.INVALID_DATA, f"{name} must be a whole number from {minimum} to {maximum}")
        return value

    return parse


def choice(*allowed: str) -> Parser:
    def parse(value: Any, name: str) -> str:
        if value not in allowed:
            raise ApiError(errors.INVALID_DATA, f"{name} must be one of {', '.join(allowed)}")
        return value

    return parse


def text(max_length: int, required: bool = False) -> Parser:
    def parse(value: Any, name: str) -> str:
        if not isinstance(value, str) or any(ord(character) < 32 for character in value):
            raise ApiError(errors.INVALID_DATA, f"{name} must be text without control characters")
        value = value.strip()
        if len(value) > max_length or (required and not value):
            raise ApiError(errors.INVALID_DATA, f"{name} must be {'1' if required else '0'} to {max_length} characters")
        return value

    return parse


def email_or_empty(value: Any, name: str) -> str:
    value = text(254)(value, name)
    if value and not EMAIL_PATTERN.fullmatch(value):
        raise ApiError(errors.INVALID_DATA, f"{name} must be an e-mail address")
    return value


def count_as_text(value: Any, name: str) -> str:
    # CosyncJWT's schema stores maxLoginAttempts as a string.
    return str(whole_number(0, 1000)(value, name))


# The fields `update` may change, with their parsers. `name` is handled apart (unique).
UPDATABLE_FIELDS: dict[str, Parser] = {
    "type": choice("development", "commercial"),
    "handle": choice("email", "userName"),
    "jwtEnabled": boolean,
    "anonymousLoginEnabled": boolean,
    "userNamesEnabled": boolean,
    "invitationEnabled": boolean,
    "signupEnabled": boolean,
    "signupFlow": choice("code", "link", "none"),
    "appleLoginEnabled": boolean,
    "appleBundleId": text(2000),
    "googleLoginEnabled": boolean,
    "googleClientId": text(2000),
    "googleAppName": text(100),
    "emailExtension": boolean,
    "emailExtensionSenderEmail": email_or_empty,
    "metaDataEmail": boolean,
    "passwordFilter": boolean,
    "passwordMinLength": whole_number(0, 128),
    "passwordMinUpper": whole_number(0, 128),
    "passwordMinLower": whole_number(0, 128),
    "passwordMinDigit": whole_number(0, 128),
    "passwordMinSpecial": whole_number(0, 128),
    "userJWTExpiration": whole_number(0, 8760),
    "maxUsers": whole_number(0, 1_000_000_000),
    "maxLoginAttempts": count_as_text,
    "realmAppId": text(200),
}

# Fields that exist but change elsewhere, with where, for the error message.
CHANGED_ELSEWHERE = {
    "status": "updateAppSetting with setting status",
    "twoFactorVerification": "updateAppSetting with setting twoFactorVerification",
    "TWILIOAccountSid": "updateAppSetting with setting twoFactorVerification",
    "TWILIOToken": "updateAppSetting with setting twoFactorVerification",
    "TWILIOPhoneNumber": "updateAppSetting with setting twoFactorVerification",
    "emailExtensionAPIKey": "updateAppSetting with setting emailExtensionAPIKey",
    "locales": "addRemoveAppLocale",
    "jwtAudience": "setJwtAudience",
}


def update_app(body: dict[str, Any]) -> dict[str, Any]:
    """Change the allowed fields given in `body` (besides `appId`); return the app.

    `metaData` and `metaDataInvite` definitions given here are appended to the existing ones,
    as in CosyncJWT; a path that is already defined is rejected.
    """
    app = load_app(require_text(body, "appId"))
    fields = sorted(key for key in body if key != "appId")
    with audit.operator_action(app["appId"], "update", fields=fields):
        changes = _parse_update(app, body, fields)
        if "name" in changes and changes["name"] != app["name"]:
            _check_name_free(changes["name"])
        _store(app["appId"], changes)
    return admin_view(load_app(app["appId"]))


def _parse_update(app: dict[str, Any], body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        raise ApiError(errors.MISSING_PARAM, "no field to update")
    changes: dict[str, Any] = {}
    for name in fields:
        value = body[name]
        if name == "name":
            changes[name] = validate_app_name(value)
        elif name in ("metaData", "metaDataInvite"):
            added = parse_definitions(value, name)
            changes[name] = _append_definitions(app.get(name) or [], added, name)
        elif name in UPDATABLE_FIELDS:
            changes[name] = UPDATABLE_FIELDS[name](value, name)
        elif name in CHANGED_ELSEWHERE:
            raise ApiError(errors.INVALID_DATA, f"field {name} is changed through {CHANGED_ELSEWHERE[name]}")
        else:
            raise ApiError(errors.INVALID_DATA, f"field {name} cannot be changed with update")
    return changes


def _check_name_free(name: str) -> None:
    if db.collection(db.APPS).find_one({"name": name}, {"_id": 1}) is not None:
        raise ApiError(errors.INVALID_DATA, f"an app named {name!r} already exists")


def _store(app_id: str, changes: dict[str, Any], removals: tuple[str, ...] = ()) -> None:
    update: dict[str, Any] = {"$set": {**changes, "updatedAt": utc_now()}}
    if removals:
        update["$unset"] = {name: "" for name in removals}
    try:
        db.collection(db.APPS).update_one({"appId": app_id}, update)
    except DuplicateKeyError:
        # The unique name index decides between parallel renames to one name.
        raise ApiError(errors.INVALID_DATA, f"an app named {changes.get('name')!r} already exists") from None
    finally:
        app_cache.forget(app_id)


# Metadata definitions


def parse_definitions(value: Any, kind: str) -> list[dict[str, Any]]:
    """Return validated `metaData` or `metaDataInvite` definitions from a list or its JSON text.

    A definition is `{id, path, required, fieldName}` plus `canEdit` for `metaData`. Paths are
    dot paths into the user's metadata and unique in the list. A path may not start with a
    registered JWT claim or `userName`, and `email` is allowed only with fieldName "email".
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(errors.INVALID_DATA, f"{kind} is not valid JSON") from None
    if not isinstance(value, list) or len(value) > MAX_DEFINITIONS:
        raise ApiError(errors.INVALID_DATA, f"{kind} must be a list of at most {MAX_DEFINITIONS} definitions")
    definitions = [_parse_definition(item, kind) for item in value]
    _check_unique_paths(definitions, kind)
    return definitions


def _parse_definition(item: Any, kind: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ApiError(errors.INVALID_DATA, f"each {kind} definition must be an object")
    path = _parse_path(item.get("path"), kind)
    field_name = text(100)(item.get("fieldName", path), f"{kind} fieldName") or path
    if path.split(".")[0] == "email" and field_name != "email":
        raise ApiError(errors.INVALID_DATA, f"{kind} path email needs fieldName email")
    definition: dict[str, Any] = {
        "id": _parse_id(item.get("id"), kind),
        "path": path,
        "required": boolean(item.get("required", False), f"{kind} required"),
        "fieldName": field_name,
    }
    if kind == "metaData":
        definition["canEdit"] = boolean(item.get("canEdit", False), "metaData canEdit")
    return definition


def _parse_path(value: Any, kind: str) -> str:
    path = text(MAX_PATH_LENGTH, required=True)(value, f"{kind} path")
    segments = path.split(".")
    if any(not segment or segment.startswith("$") for segment in segments):
        raise ApiError(errors.INVALID_DATA, f"{kind} path {path!r} has an empty segment or one starting with $")
    if segments[0] in REGISTERED_CLAIMS | {"userName"}:
        raise ApiError(errors.INVALID_DATA, f"{kind} path {path!r} would replace the JWT claim {segments[0]}")
    return path


def _parse_id(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= 100):
        return value
    raise ApiError(errors.INVALID_DATA, f"{kind} id must be a string or a number")


def _check_unique_paths(definitions: list[dict[str, Any]], kind: str) -> None:
    seen: set[str] = set()
    for definition in definitions:
        if definition["path"] in seen:
            raise ApiError(errors.INVALID_DATA, f"duplicate {kind} path {definition['path']!r}")
        seen.add(definition["path"])


def _append_definitions(existing: list[Any], added: list[dict[str, Any]], kind: str) -> list[Any]:
    combined = [item for item in existing if isinstance(item, dict)] + added
    if len(combined) > MAX_DEFINITIONS:
        raise ApiError(errors.INVALID_DATA, f"an app has at most {MAX_DEFINITIONS} {kind} definitions")
    _check_unique_paths(combined, kind)
    return combined


def replace_definitions(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """Replace the app's `metaData` or `metaDataInvite` definitions with `body[kind]`; return the app."""
    app = load_app(require_text(body, "appId"))
    action = "updateAppMetaData" if kind == "metaData" else "updateAppInviteMetaData"
    with audit.operator_action(app["appId"], action) as details:
        if kind not in body:
            raise ApiError(errors.MISSING_PARAM, f"field {kind} is missing")
        definitions = parse_definitions(body[kind], kind)
        details["paths"] = [definition["path"] for definition in definitions]
        _store(app["appId"], {kind: definitions})
    return admin_view(load_app(app["appId"]))


def delete_definition(body: dict[str, Any]) -> dict[str, Any]:
    """Remove the definition at `index` (from 0) of the app's `type` list; return the app."""
    app = load_app(require_text(body, "appId"))
    kind = choice("metaData", "metaDataInvite")(require_text(body, "type"), "type")
    definitions = list(app.get(kind) or [])
    with audit.operator_action(app["appId"], "deleteMetadata", type=kind) as details:
        index = whole_number(0, MAX_DEFINITIONS * 10)(body.get("index"), "index")
        if index >= len(definitions):
            raise ApiError(errors.INVALID_DATA, f"app has no {kind} definition at index {index}")
        removed = definitions.pop(index)
        details["path"] = removed.get("path") if isinstance(removed, dict) else None
        _store(app["appId"], {kind: definitions})
    return admin_view(load_app(app["appId"]))


# Named settings (`POST /api/app/updateAppSetting`)

# Settings that set one field, named as CosyncJWT names them.
SINGLE_FIELD_SETTINGS = {
    "invite": "invitationEnabled",
    "jwtEnabled": "jwtEnabled",
    "userNamesEnabled": "userNamesEnabled",
    "anonLogin": "anonymousLoginEnabled",
    "signup": "signupEnabled",
    "signupFlow": "signupFlow",
    "maxUsers": "maxUsers",
    "maxLoginAttempts": "maxLoginAttempts",
    "realmAppId": "realmAppId",
    "userJWTExpiration": "userJWTExpiration",
    "passwordFilter": "passwordFilter",
    "metaDataEmail": "metaDataEmail",
    "emailExtension": "emailExtension",
    "appleLogin": "appleLoginEnabled",
    "googleLogin": "googleLoginEnabled",
}
PASSWORD_FIELDS = ("passwordMinLength", "passwordMinUpper", "passwordMinLower", "passwordMinDigit", "passwordMinSpecial")
Change = tuple[dict[str, Any], tuple[str, ...]]


def _single_field(field: str) -> Callable[[dict[str, Any], dict[str, Any]], Change]:
    def apply(app: dict[str, Any], body: dict[str, Any]) -> Change:
        if field not in body:
            raise ApiError(errors.MISSING_PARAM, f"field {field} is missing")
        return {field: UPDATABLE_FIELDS[field](body[field], field)}, ()

    return apply


def _status(app: dict[str, Any], body: dict[str, Any]) -> Change:
    return {"status": choice("active", "inactive", "migrated")(body.get("status"), "status")}, ()


def _audience_list(field: str) -> Callable[[dict[str, Any], dict[str, Any]], Change]:
    def apply(app: dict[str, Any], body: dict[str, Any]) -> Change:
        return {field: text(2000, required=True)(body.get(field), field)}, ()

    return apply


def _password_rules(app: dict[str, Any], body: dict[str, Any]) -> Change:
    # Rules left out of the request keep their value.
    changes = {name: UPDATABLE_FIELDS[name](body[name], name) for name in PASSWORD_FIELDS if name in body}
    if not changes:
        raise ApiError(errors.MISSING_PARAM, f"give at least one of {', '.join(PASSWORD_FIELDS)}")
    return changes, ()


def _encrypted(app: dict[str, Any], field: str, value: str) -> str:
    return encrypt_field(get_secrets().encryption_key, value, f"apps.{field}:{app['appId']}")


def _two_factor(app: dict[str, Any], body: dict[str, Any]) -> Change:
    mode = choice("none", "phone", "google")(body.get("twoFactorVerification"), "twoFactorVerification")
    changes: dict[str, Any] = {"twoFactorVerification": mode}
    if mode == "phone":
        changes.update(_twilio_account(app, body))
    if mode == "google":
        # The reference server's portal sends `googleAPP_NAME`.
        name = body.get("googleAppName", body.get("googleAPP_NAME"))
        if name not in (None, ""):
            changes["googleAppName"] = text(100)(name, "googleAppName")
    return changes, ()


def _twilio_account(app: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    given = [name for name in TWILIO_FIELDS if body.get(name) not in (None, "")]
    if not given and all(app.get(name) for name in TWILIO_FIELDS):
        return {}  # keep the stored account
    if len(given) != len(TWILIO_FIELDS):
        raise ApiError(errors.INVALID_DATA, f"phone two-factor needs {', '.join(TWILIO_FIELDS)}")
    sid, token, number = (str(body[name]).strip() for name in TWILIO_FIELDS)
    if not TWILIO_SID_PATTERN.fullmatch(sid):
        raise ApiError(errors.INVALID_DATA, "TWILIOAccountSid must be AC followed by 32 hexadecimal digits")
    if not CREDENTIAL_PATTERN.fullmatch(token):
        raise ApiError(errors.INVALID_DATA, "TWILIOToken must be 1 to 200 printable characters without spaces")
    if not PHONE_PATTERN.fullmatch(number):
        raise ApiError(errors.INVALID_DATA, "TWILIOPhoneNumber must be in E.164 form, such as +15551234567")
    return {name: _encrypted(app, name, value) for name, value in zip(TWILIO_FIELDS, (sid, token, number))}


def _email_extension_key(app: dict[str, Any], body: dict[str, Any]) -> Change:
    if "emailExtensionAPIKey" not in body and "emailExtensionSenderEmail" not in body:
        raise ApiError(errors.MISSING_PARAM, "give emailExtensionAPIKey, emailExtensionSenderEmail or both")
    changes: dict[str, Any] = {}
    removals: tuple[str, ...] = ()
    if "emailExtensionSenderEmail" in body:
        changes["emailExtensionSenderEmail"] = email_or_empty(body["emailExtensionSenderEmail"], "emailExtensionSenderEmail")
    key = body.get("emailExtensionAPIKey", None)
    if key == "":
        removals = ("emailExtensionAPIKey",)
    elif key is not None:
        if not isinstance(key, str) or not CREDENTIAL_PATTERN.fullmatch(key.strip()):
            raise ApiError(errors.INVALID_DATA, "emailExtensionAPIKey must be 1 to 200 printable characters without spaces")
        changes["emailExtensionAPIKey"] = _encrypted(app, "emailExtensionAPIKey", key.strip())
    return changes, removals


NAMED_SETTINGS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Change]] = {
    **{name: _single_field(field) for name, field in SINGLE_FIELD_SETTINGS.items()},
    "status": _status,
    "appleBundleId": _audience_list("appleBundleId"),
    "googleClientId": _audience_list("googleClientId"),
    "passwordSetting": _password_rules,
    "twoFactorVerification": _two_factor,
    "emailExtensionAPIKey": _email_extension_key,
}


def update_setting(body: dict[str, Any]) -> dict[str, Any]:
    """Change one named setting of the app, with its fields from `body`; return the app.

    Setting a value the app already has succeeds and changes nothing but `updatedAt`.
    """
    app = load_app(require_text(body, "appId"))
    name = require_text(body, "setting")
    apply = NAMED_SETTINGS.get(name)
    if apply is None:
        raise ApiError(errors.INVALID_DATA, f"unknown setting {name!r}; known: {', '.join(sorted(NAMED_SETTINGS))}")
    with audit.operator_action(app["appId"], "updateAppSetting", setting=name):
        changes, removals = apply(app, body)
        _store(app["appId"], changes, removals)
    return admin_view(load_app(app["appId"]))
