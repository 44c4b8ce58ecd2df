"""Operator tasks on an app's users and sign-ups: search, add, remove, suspend, edit metadata.

Every function takes the app id from the request and finds the user or sign-up within that
app only. CosyncJWT looks users up by `_id` alone, so an operator request naming one app could
change a user of another app.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, TypeVar

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from cosync import audit, db, errors, search
from cosync.crypto import GCM_PREFIX, hash_password
from cosync.dates import iso, utc_now
from cosync.dotpath import get_path, set_path
from cosync.errors import ApiError
from cosync.services.apps import load_app, setting
from cosync.services.accounts import insert_user, new_user
from cosync.services.signup import ACTIVE
from cosync.services.users import delete_user, revoke_tokens
from cosync.tokens import REGISTERED_CLAIMS, user_jwt_claims
from cosync.validation import (
    MAX_HANDLE_LENGTH,
    normalise_handle,
    optional_text,
    parse_locale,
    parse_metadata,
    require_email_handle,
    require_password,
    require_text,
)

OPERATOR_LOG = "app"
USER_STATUSES = ("active", "suspend")
ANONYMOUS_PREFIX = "^ANON_"

# Never shown to the operator: password hashes, TOTP seeds, codes and the revocation counter.
HIDDEN_USER_FIELDS = frozenset({"__v", "password", "googleSecretKey", "twoFactorCode", "phoneCode", "tokenVersion"})
HIDDEN_SIGNUP_FIELDS = frozenset({"__v", "password", "code", "codeHash", "expiresAt"})

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
# Claims metadata may not name: those the server sets in every user JWT.
RESERVED_METADATA_KEYS = REGISTERED_CLAIMS | {"email", "userName"}


Result = TypeVar("Result")


def _audited_failures(action: str) -> Callable[[Callable[[dict[str, Any]], Result]], Callable[[dict[str, Any]], Result]]:
    """Record a failed change in the audit log of the app the request names, then re-raise.

    Requests naming no app or an unknown app are not recorded, so they cannot fill the log.
    """

    def decorate(change: Callable[[dict[str, Any]], Result]) -> Callable[[dict[str, Any]], Result]:
        @functools.wraps(change)
        def run(body: dict[str, Any]) -> Result:
            try:
                return change(body)
            except ApiError as error:
                app_id = body.get("appId")
                if isinstance(app_id, str) and app_id and error.error is not errors.APP_NOT_FOUND:
                    handle = body.get("handle")
                    handle = handle if isinstance(handle, str) and len(handle) <= MAX_HANDLE_LENGTH else None
                    audit.record(app_id, action, "error", handle, log_type=OPERATOR_LOG, code=error.error.code)
                raise

        return run

    return decorate


def _view(document: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    view = {}
    for key, value in document.items():
        if key in hidden or (isinstance(value, str) and value.startswith(GCM_PREFIX)):
            continue
        view[key] = str(value) if isinstance(value, ObjectId) else iso(value)
    return view


def user_view(user: dict[str, Any]) -> dict[str, Any]:
    """Return a user as operator routes show it: `_id` as text, no hashes, seeds or codes."""
    return _view(user, HIDDEN_USER_FIELDS)


def signup_view(signup: dict[str, Any]) -> dict[str, Any]:
    return _view(signup, HIDDEN_SIGNUP_FIELDS)


def _require_app_id(body: dict[str, Any]) -> str:
    app_id = require_text(body, "appId")
    load_app(app_id)
    return app_id


def _object_id(value: Any, name: str) -> ObjectId:
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    raise ApiError(errors.INVALID_DATA, f"{name} is not a document id")


def _record_query(app_id: str, body: dict[str, Any], id_field: str) -> dict[str, Any]:
    """Return the query for the record the request names by `id_field` or by `handle`, in `app_id`."""
    record_id = body.get(id_field)
    if record_id not in (None, ""):
        return {"appId": app_id, "_id": _object_id(record_id, id_field)}
    handle = optional_text(body, "handle")
    if handle is None:
        raise ApiError(errors.MISSING_PARAM, f"field {id_field} or handle is missing")
    # Sign-up stores handles lower-cased, but anonymous handles (`ANON_...`) keep their case.
    candidates = {normalise_handle(handle), handle.strip()}
    return {"appId": app_id, "handle": {"$in": sorted(candidates)}}


def _find_user(app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    user = db.collection(db.USERS).find_one(_record_query(app_id, body, "userId"))
    if user is None:
        raise ApiError(errors.ACCOUNT_NOT_EXIST, f"no such user in app {app_id}")
    return user


def search_users(params: dict[str, Any]) -> search.Page:
    """Page through an app's users whose handle or user name contains `value`, by handle.

    Without `value` every user is listed; `hideAnonUser=true` leaves out anonymous users.
    """
    app_id = _require_app_id(params)
    text = search.parse_search_text(params.get("value"))
    page = search.parse_page(params)
    conditions: list[dict[str, Any]] = [{"appId": app_id}]
    if text is not None:
        pattern = {"$regex": search.literal_pattern(text), "$options": "i"}
        conditions.append({"$or": [{"handle": pattern}, {"userName": pattern}]})
    if params.get("hideAnonUser") == "true":
        conditions.append({"handle": {"$not": {"$regex": ANONYMOUS_PREFIX}}})
    found = search.find_page(db.collection(db.USERS), {"$and": conditions}, [("handle", 1), ("_id", 1)], page)
    return search.Page([user_view(user) for user in found.items], found.total, page)


def search_signups(params: dict[str, Any]) -> search.Page:
    """Page through an app's sign-up records whose handle contains `value`, by handle."""
    app_id = _require_app_id(params)
    text = search.parse_search_text(params.get("value"))
    page = search.parse_page(params)
    query: dict[str, Any] = {"appId": app_id}
    if text is not None:
        query["handle"] = {"$regex": search.literal_pattern(text), "$options": "i"}
    found = search.find_page(db.collection(db.SIGNUPS), query, [("handle", 1), ("_id", 1)], page)
    return search.Page([signup_view(signup) for signup in found.items], found.total, page)


@_audited_failures("removeAppSignup")
def remove_signup(body: dict[str, Any]) -> dict[str, Any]:
    """Delete one sign-up record, named by `_id` or `handle`, and its pending codes."""
    app_id = _require_app_id(body)
    query = _record_query(app_id, body, "_id")
    signup = db.collection(db.SIGNUPS).find_one_and_delete(query)
    if signup is None:
        raise ApiError(errors.ACCOUNT_NOT_EXIST, f"no such sign-up in app {app_id}")
    db.collection(db.SIGNUP_CODES).delete_many({"appId": app_id, "handle": signup["handle"]})
    audit.record(app_id, "removeAppSignup", "success", signup["handle"], log_type=OPERATOR_LOG)
    return signup_view(signup)


@_audited_failures("updateAppUser")
def set_user_status(body: dict[str, Any]) -> bool:
    """Set a user's status to `active` or `suspend`; suspension revokes the user's tokens."""
    app_id = _require_app_id(body)
    status = require_text(body, "status")
    if status not in USER_STATUSES:
        raise ApiError(errors.INVALID_DATA, f"status must be one of {', '.join(USER_STATUSES)}")
    user = _find_user(app_id, body)
    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"status": status, "updatedAt": utc_now()}})
    if status == "suspend":
        revoke_tokens(app_id, user["handle"])
    audit.record(app_id, "updateAppUser", "success", user["handle"], log_type=OPERATOR_LOG, userStatus=status)
    return True


@_audited_failures("updateAppUserMetaData")
def update_user_metadata(body: dict[str, Any]) -> bool:
    """Replace a user's metadata with `metaData`, then apply the `addedMetadata` items.

    String values at the paths of the app's metadata fields are trimmed. The change is refused
    when the user would lack a required JWT field, because the user could no longer log in.
    """
    app_id = _require_app_id(body)
    user = _find_user(app_id, body)
    metadata = _parse_metadata_object(body.get("metaData"))
    app = load_app(app_id)
    for field in setting(app, "metaData") + setting(app, "metaDataInvite"):
        path = field.get("path") if isinstance(field, dict) else None
        value = get_path(metadata, path) if isinstance(path, str) and path else None
        if isinstance(value, str):
            set_path(metadata, path, value.strip())
    for path, value in _added_metadata(body.get("addedMetadata")):
        set_path(metadata, path, value)
    _check_metadata(metadata)
    if user_jwt_claims({**user, "metaData": metadata}, app, 0) is None:
        raise ApiError(errors.INVALID_METADATA, "metadata lacks a field the app's JWT requires")

    db.collection(db.USERS).update_one({"_id": user["_id"]}, {"$set": {"metaData": metadata, "updatedAt": utc_now()}})
    audit.record(app_id, "updateAppUserMetaData", "success", user["handle"], log_type=OPERATOR_LOG, fields=sorted(metadata))
    return True


def _decode_json_text(raw: Any, name: str) -> Any:
    """Return the value of a field that clients send as JSON text or as the JSON value itself."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(errors.INVALID_METADATA, f"{name} is not valid JSON") from None


def _parse_metadata_object(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        raise ApiError(errors.MISSING_PARAM, "field metaData is missing")
    raw = _decode_json_text(raw, "metaData")
    if not isinstance(raw, dict):
        raise ApiError(errors.INVALID_METADATA, "metaData must be a JSON object")
    return raw


def _added_metadata(raw: Any) -> list[tuple[str, str]]:
    """Return the (path, trimmed value) pairs of `addedMetadata`, a list of `{path, value}`."""
    if raw is None or raw == "":
        return []
    raw = _decode_json_text(raw, "addedMetadata")
    if not isinstance(raw, list):
        raise ApiError(errors.INVALID_METADATA, "addedMetadata must be a list of {path, value}")
    pairs = []
    for item in raw:
        path = item.get("path") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(path, str) or not path or not isinstance(value, str):
            raise ApiError(errors.INVALID_METADATA, "each addedMetadata item needs a text path and value")
        pairs.append((path, value.strip()))
    return pairs


def _check_metadata(metadata: dict[str, Any]) -> None:
    """Bound the size and nesting of metadata and keep it from naming a reserved JWT claim."""
    reserved = sorted(RESERVED_METADATA_KEYS & set(metadata))
    if reserved:
        raise ApiError(errors.INVALID_METADATA, f"metaData may not set the JWT claims {', '.join(reserved)}")
    try:
        size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        raise ApiError(errors.INVALID_METADATA, "metaData is not plain JSON") from None
    if size > MAX_METADATA_BYTES:
        raise ApiError(errors.INVALID_METADATA, f"metaData exceeds {MAX_METADATA_BYTES} bytes")
    _check_keys(metadata, depth=1)


def _check_keys(value: Any, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise ApiError(errors.INVALID_METADATA, f"metaData is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, list):
        for child in value:
            _check_keys(child, depth + 1)
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        # MongoDB reserves `$` names, and a dot would read as a path step.
        if not key or key.startswith("$") or "." in key or "\0" in key:
            raise ApiError(errors.INVALID_METADATA, f"metaData key {key!r} is not allowed")
        _check_keys(child, depth + 1)


@_audited_failures("addUser")
def add_user(body: dict[str, Any]) -> dict[str, Any]:
    """Create an active user with the given password digest, as if sign-up had completed.

    The handle must be an e-mail address and is stored lower-cased, as the sign-up flows store
    it. A pending sign-up of the handle becomes `active` and its codes are deleted.
    """
    app_id = _require_app_id(body)
    app = load_app(app_id)
    handle = require_email_handle(body)
    password = require_password(body)
    locale = parse_locale(body, setting(app, "locales"))
    metadata = parse_metadata(body, setting(app, "metaData"))

    user = new_user(app_id, handle, hash_password(password), locale, metadata)
    del user["lastLogin"]  # the user has not logged in yet
    insert_user(app, user)
    _activate_signup_record(app_id, handle, locale, metadata, user["createdAt"])
    audit.record(app_id, "addUser", "success", handle, log_type=OPERATOR_LOG)
    return user_view(user)


def _activate_signup_record(app_id: str, handle: str, locale: str, metadata: dict[str, Any], now: Any) -> None:
    query = {"appId": app_id, "handle": handle}
    update = {
        "$set": {"status": ACTIVE, "locale": locale, "metaData": metadata, "updatedAt": now},
        "$setOnInsert": {"createdAt": now},
        "$unset": {"password": "", "code": "", "expiresAt": ""},
    }
    try:
        db.collection(db.SIGNUPS).update_one(query, update, upsert=True)
    except DuplicateKeyError:
        # A parallel sign-up inserted the record first; update the one it created.
        update.pop("$setOnInsert")
        db.collection(db.SIGNUPS).update_one(query, update)
    db.collection(db.SIGNUP_CODES).delete_many(query)


@_audited_failures("removeUser")
def remove_user(body: dict[str, Any]) -> dict[str, Any]:
    """Delete a user with every sign-up, invite, password-reset, SMS-code and user-name record of its handle."""
    app_id = _require_app_id(body)
    user = _find_user(app_id, body)
    delete_user(user)
    audit.record(app_id, "removeUser", "success", user["handle"], log_type=OPERATOR_LOG)
    return user_view(user)
