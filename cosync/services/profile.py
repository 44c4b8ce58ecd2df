"""The signed-in user's profile: `userNameAvailable`, `setLocale`, `setUserName` and
`setUserMetadata`.

User names are 3 to 32 characters from `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter
or digit. They are compared in lower case, so "Ada" and "ada" are one name, and they never
contain `@`, so a login identifier is either an e-mail handle or a user name, never both.
A name is set once and is unique per app. The `usernames` collection contains one document per
taken name, and its unique `_id` decides between parallel requests.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from cosync import audit, db, errors
from cosync.auth import Caller
from cosync.dates import utc_now
from cosync.dotpath import get_path, set_path
from cosync.errors import ApiError
from cosync.services.apps import check_app_active, load_active_app, load_app, setting
from cosync.services.phone import active_user
from cosync.validation import MAX_METADATA_VALUE_LENGTH, parse_locale, require_text

USER_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{2,31}")


def _user_names_app(app_id: str) -> dict[str, Any]:
    """Load an active app that has user names on (606 otherwise)."""
    app = load_app(app_id)
    if not setting(app, "userNamesEnabled"):
        raise ApiError(errors.APP_ISNOT_USERNAME_LOGIN, "user names are off for this app")
    check_app_active(app)
    return app


def _user_name(value: str) -> str:
    name = value.strip().lower()
    if not USER_NAME_PATTERN.fullmatch(name):
        raise ApiError(errors.INVALID_DATA, "user name must be 3 to 32 of a-z, 0-9, '.', '_', '-'")
    return name


def _name_holder(app_id: str, name: str) -> dict[str, Any] | None:
    return db.collection(db.USERS).find_one({"appId": app_id, "userName": name}, {"handle": 1})


def user_name_available(caller: Caller, params: dict[str, Any]) -> dict[str, bool]:
    """Tell whether a user name is free in the caller's app (`userNameAvailable`)."""
    raw = require_text(dict(params), "userName")
    _user_names_app(caller.app_id)
    name = _user_name(raw)
    return {"available": _name_holder(caller.app_id, name) is None}


def set_user_name(caller: Caller, body: dict[str, Any]) -> bool:
    """Give the caller a user name, once (`setUserName`)."""
    raw = require_text(body, "userName")
    app = _user_names_app(caller.app_id)
    user = active_user(caller)
    if user.get("userName"):
        raise ApiError(errors.INVALID_DATA, "the user name is set already and cannot change")
    name = _user_name(raw)
    app_id, handle = app["appId"], user["handle"]
    if _name_holder(app_id, name) is not None:
        audit.record(app_id, "setUserName", "error", handle, code=errors.USERNAME_ALREADY_IN_USE.code)
        raise ApiError(errors.USERNAME_ALREADY_IN_USE, "another user has this name")
    _claim_name(app_id, name, handle)
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"userName": name, "updatedAt": utc_now()}})
    audit.record(app_id, "setUserName", "success", handle, userName=name)
    return True


def _claim_name(app_id: str, name: str, handle: str) -> None:
    """Reserve `name` for `handle`, taking over a claim whose account was deleted."""
    names = db.collection(db.USER_NAMES)
    claim_id = f"{app_id}:{name}"
    try:
        names.insert_one({"_id": claim_id, "appId": app_id, "handle": handle, "createdAt": utc_now()})
        return
    except DuplicateKeyError:
        pass
    holder = names.find_one({"_id": claim_id})
    holder_handle = holder.get("handle") if holder is not None else handle
    holder_exists = db.collection(db.USERS).find_one({"appId": app_id, "handle": holder_handle}, {"_id": 1})
    if holder_handle != handle and holder_exists is not None:
        raise ApiError(errors.USERNAME_ALREADY_IN_USE, "another user is taking this name")
    names.replace_one({"_id": claim_id}, {"appId": app_id, "handle": handle, "createdAt": utc_now()}, upsert=True)


def set_locale(caller: Caller, body: dict[str, Any]) -> bool:
    """Set the caller's locale; it must be one the app enables (`setLocale`)."""
    require_text(body, "locale")
    app = load_active_app(caller.app_id)
    locale = parse_locale(body, setting(app, "locales"))
    user = active_user(caller)
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"locale": locale, "updatedAt": utc_now()}})
    audit.record(app["appId"], "setLocale", "success", user["handle"], locale=locale)
    return True


def _parse_metadata_object(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("metaData")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
    raise ApiError(errors.INVALID_DATA, "metaData must be a JSON object or a string of one")


def set_user_metadata(caller: Caller, body: dict[str, Any]) -> bool:
    """Change the editable metadata fields of the caller (`setUserMetadata`).

    Only fields the app declares with `canEdit` may be sent; a declared field that is not
    editable may be sent only with its stored value. Other stored values are kept, unlike in
    CosyncJWT, which replaces the whole object and so loses fields not sent again.
    """
    sent = _parse_metadata_object(body)
    app = load_active_app(caller.app_id)
    fields = setting(app, "metaData")
    if not fields:
        raise ApiError(errors.INVALID_DATA, "the app declares no metadata fields")
    user = active_user(caller)
    stored = user.get("metaData") if isinstance(user.get("metaData"), dict) else {}
    result = copy.deepcopy(stored)

    for field in fields:
        path = field.get("path")
        if not isinstance(path, str) or not path:
            continue
        value = get_path(sent, path)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise ApiError(errors.INVALID_METADATA, f"metaData field {path} must be a short string")
        value = value.strip()
        if field.get("canEdit") is not True and value != get_path(stored, path):
            raise ApiError(errors.INVALID_METADATA, f"metaData field {path} cannot be changed by the user")
        set_path(result, path, value)
    for field in fields:
        path = field.get("path")
        if isinstance(path, str) and path and field.get("required") and not get_path(result, path):
            raise ApiError(errors.INVALID_METADATA, f"metaData field {path} is required")

    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"metaData": result, "updatedAt": utc_now()}})
    audit.record(app["appId"], "setUserMetadata", "success", user["handle"])
    return True
