"""Checks and normalisation of request fields, each failing with the contract's error code."""

from __future__ import annotations

import json
import re
from typing import Any

from cosync import errors
from cosync.crypto import is_valid_password_digest
from cosync.dotpath import get_path, set_path
from cosync.errors import ApiError
from cosync.locales import LOCALE_CODES

MAX_HANDLE_LENGTH = 254
MAX_METADATA_VALUE_LENGTH = 1000
# An address with one `@`, no whitespace or control characters, and a dot in the domain.
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+")
# ASCII digits only: `\d` also matches digits of other scripts, which int() would accept.
CODE_PATTERN = re.compile(r"[0-9]{1,10}")


def require_text(body: dict[str, Any], name: str) -> str:
    """Return a required string field; absent or empty → MISSING_PARAM, not a string → INVALID_DATA."""
    value = body.get(name)
    if value is None or value == "":
        raise ApiError(errors.MISSING_PARAM, f"field {name} is missing")
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, f"field {name} must be a string")
    return value


def optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, f"field {name} must be a string")
    return value


def normalise_handle(value: str) -> str:
    """Lower-case and trim a handle, as no SDK does it on the client."""
    handle = value.strip().lower()
    if not handle or len(handle) > MAX_HANDLE_LENGTH:
        raise ApiError(errors.INVALID_DATA, "handle is empty or too long")
    return handle


def require_email_handle(body: dict[str, Any], name: str = "handle") -> str:
    handle = normalise_handle(require_text(body, name))
    if not EMAIL_PATTERN.fullmatch(handle):
        raise ApiError(errors.INVALID_DATA, "handle is not an e-mail address")
    return handle


def require_password(body: dict[str, Any], name: str = "password") -> str:
    """Return the client's password digest: 32 hex characters (MD5), as every SDK sends."""
    value = require_text(body, name)
    if not is_valid_password_digest(value):
        raise ApiError(errors.INVALID_DATA, f"field {name} is not a 32-character hex digest")
    return value.lower()


def require_code(body: dict[str, Any], name: str = "code") -> str:
    """Return a numeric code as its canonical decimal text ("012345" and "12345" are equal).

    A JSON number is accepted as well as a string, because plain HTTP clients send either.
    """
    value = body.get(name)
    if value is None or value == "":
        raise ApiError(errors.MISSING_PARAM, f"field {name} is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(errors.INVALID_DATA, f"field {name} must be numeric")
    text = str(value).strip()
    if not CODE_PATTERN.fullmatch(text):
        raise ApiError(errors.INVALID_DATA, f"field {name} must be numeric")
    return str(int(text))


def parse_locale(body: dict[str, Any], allowed: list[str]) -> str:
    """Return the request's locale upper-cased (default EN); it must be one the app enables."""
    value = optional_text(body, "locale")
    locale = (value or "EN").strip().upper()
    if locale not in LOCALE_CODES or locale not in {str(code).upper() for code in allowed} | {"EN"}:
        raise ApiError(errors.INVALID_DATA, f"locale {locale!r} is not enabled for this app")
    return locale


def parse_metadata(body: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate request `metaData` against the app's field definitions.

    `metaData` is a JSON object encoded as a string (what the SDKs send); an object is accepted
    too. Only declared fields are kept, each a trimmed string; a missing required field, a
    non-string value or unparsable JSON raises INVALID_METADATA.
    """
    if not fields:
        return {}
    raw = body.get("metaData")
    if raw is None or raw == "":
        data: Any = {}
    elif isinstance(raw, dict):
        data = raw
    elif isinstance(raw, str):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(errors.INVALID_METADATA, "metaData is not valid JSON") from None
    else:
        raise ApiError(errors.INVALID_METADATA, "metaData must be a JSON object")
    if not isinstance(data, dict):
        raise ApiError(errors.INVALID_METADATA, "metaData must be a JSON object")

    result: dict[str, Any] = {}
    for field in fields:
        path = field.get("path")
        if not isinstance(path, str) or not path:
            continue
        value = get_path(data, path)
        if value is None:
            if field.get("required"):
                raise ApiError(errors.INVALID_METADATA, f"metaData field {path} is required")
            continue
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH:
            raise ApiError(errors.INVALID_METADATA, f"metaData field {path} must be a short string")
        value = value.strip()
        if not value and field.get("required"):
            raise ApiError(errors.INVALID_METADATA, f"metaData field {path} is required")
        set_path(result, path, value)
    return result


def parse_registration_metadata(body: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate `metaData` as `register` and `socialSignup` do in CosyncJWT.

    Unparsable JSON or a declared field that is not a string raises INVALID_DATA; a missing
    required field raises INVALID_METADATA, as in `parse_metadata`.
    """
    if not fields:
        return {}
    raw = body.get("metaData")
    data: Any = raw
    if isinstance(raw, str) and raw != "":
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(errors.INVALID_DATA, "metaData is not valid JSON") from None
    if data is not None and data != "" and not isinstance(data, dict):
        raise ApiError(errors.INVALID_DATA, "metaData must be a JSON object")
    for field in fields:
        path = field.get("path")
        value = get_path(data, path) if isinstance(data, dict) and isinstance(path, str) and path else None
        if value is not None and (not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_LENGTH):
            raise ApiError(errors.INVALID_DATA, f"metaData field {path} must be a short string")
    return parse_metadata({"metaData": data}, fields)
