"""Request bodies: size limit, JSON and form decoding, field types, and what is stored when a
body is rejected (nothing)."""

from __future__ import annotations

import json

import pytest

from cosync import db
from cosync.settings import get_settings
from flows import attempts_used, digest, error, sign_up

INVALID_DATA = error(602, "invalid data")
MISSING_PARAM = error(403, "missing parameter")
INVALID_METADATA = error(604, "invalid metadata")
PASSWORD = digest("pw")
FORM = "application/x-www-form-urlencoded"


def post_raw(api, path: str, app, body: bytes | str, content_type: str | None, **headers: str):
    headers = {"app-token": app["appToken"], **headers}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if isinstance(body, str):
        body = body.encode("utf-8")
    return api.post(path, headers=headers, data=body)


def signup_raw(api, app, body: bytes | str, content_type: str | None = "application/json"):
    return post_raw(api, "/api/appuser/signup", app, body, content_type)


def pending_signup(database, app, handle: str):
    return database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": handle})


def signup_count(database, app) -> int:
    return database[db.SIGNUPS].count_documents({"appId": app["appId"]})


# Size limit


def json_body_of_size(size: int, handle: str) -> bytes:
    """Return a sign-up JSON body of exactly `size` bytes, padded with an unknown field."""
    empty = json.dumps({"handle": handle, "password": PASSWORD, "padding": ""}).encode("utf-8")
    body = json.dumps({"handle": handle, "password": PASSWORD, "padding": "x" * (size - len(empty))}).encode("utf-8")
    assert len(body) == size
    return body


def test_body_over_limit_rejected(api, new_app, database):
    app = new_app()

    response = signup_raw(api, app, json_body_of_size(100 * 1024 + 1, "big@example.com"))

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


def test_body_at_limit_accepted(api, new_app, database):
    app = new_app()

    response = signup_raw(api, app, json_body_of_size(100 * 1024, "limit@example.com"))

    assert response.status_code == 200
    assert response.content == b"true"
    assert pending_signup(database, app, "limit@example.com")["status"] == "pending"


def test_body_limit_follows_setting(api, new_app, database, monkeypatch):
    app = new_app()
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    get_settings.cache_clear()

    response = signup_raw(api, app, json_body_of_size(2049, "small@example.com"))

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


# JSON decoding


@pytest.mark.parametrize(
    "body",
    [
        '{"handle": "a@example.com",',
        '{"handle": "a@example.com"} trailing',
        "{'handle': 'a@example.com'}",
        '{"handle": "a@example.com", "password": NaN-ish}',
    ],
)
def test_malformed_json_rejected(api, new_app, database, body):
    app = new_app()

    response = signup_raw(api, app, body)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


@pytest.mark.parametrize(
    "body",
    [
        f'[{{"handle": "a@example.com", "password": "{PASSWORD}"}}]',
        '"a@example.com"',
        "42",
        "true",
        "null",
    ],
)
def test_json_top_level_must_be_object(api, new_app, database, body):
    app = new_app()

    response = signup_raw(api, app, body)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


def test_deeply_nested_json_rejected(api, new_app, database):
    app = new_app()
    depth = 40_000
    body = '{"handle": ' + "[" * depth + "]" * depth + "}"

    response = signup_raw(api, app, body)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_variants_accepted(api, new_app, database, content_type):
    app = new_app()
    body = json.dumps({"handle": "variant@example.com", "password": PASSWORD})

    response = signup_raw(api, app, body, content_type)

    assert response.status_code == 200
    assert response.content == b"true"
    assert pending_signup(database, app, "variant@example.com") is not None


# Field types


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"password": PASSWORD}, MISSING_PARAM),
        ({"handle": "", "password": PASSWORD}, MISSING_PARAM),
        ({"handle": None, "password": PASSWORD}, MISSING_PARAM),
        ({"handle": "a@example.com"}, MISSING_PARAM),
        ({"handle": "a@example.com", "password": ""}, MISSING_PARAM),
        ({"handle": 12345, "password": PASSWORD}, INVALID_DATA),
        ({"handle": 0, "password": PASSWORD}, INVALID_DATA),
        ({"handle": ["a@example.com"], "password": PASSWORD}, INVALID_DATA),
        ({"handle": [], "password": PASSWORD}, INVALID_DATA),
        ({"handle": {"email": "a@example.com"}, "password": PASSWORD}, INVALID_DATA),
        ({"handle": True, "password": PASSWORD}, INVALID_DATA),
        ({"handle": False, "password": PASSWORD}, INVALID_DATA),
        ({"handle": "a@example.com", "password": 12345678901234567890123456789012}, INVALID_DATA),
        ({"handle": "a@example.com", "password": [PASSWORD]}, INVALID_DATA),
        ({"handle": "a@example.com", "password": {"md5": PASSWORD}}, INVALID_DATA),
        ({"handle": "a@example.com", "password": PASSWORD, "locale": 7}, INVALID_DATA),
    ],
)
def test_signup_field_types(api, new_app, database, fields, expected):
    app = new_app()

    response = signup_raw(api, app, json.dumps(fields))

    assert response.status_code == 400
    assert response.json() == expected
    assert signup_count(database, app) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"handle": 12345, "password": PASSWORD},
        {"handle": ["a@example.com"], "password": PASSWORD},
        {"handle": "a@example.com", "password": 12345},
        {"handle": "a@example.com", "password": [PASSWORD]},
    ],
)
def test_login_field_types(api, new_app, fields):
    app = new_app()

    response = post_raw(api, "/api/appuser/login", app, json.dumps(fields), "application/json")

    assert response.status_code == 400
    assert response.json() == INVALID_DATA


@pytest.mark.parametrize(
    "code, expected",
    [
        (None, MISSING_PARAM),
        ("", MISSING_PARAM),
        ([], INVALID_DATA),
        (["123456"], INVALID_DATA),
        ({"code": "123456"}, INVALID_DATA),
        (True, INVALID_DATA),
        (False, INVALID_DATA),
        (12.5, INVALID_DATA),
        ("12.5", INVALID_DATA),
        ("1e5", INVALID_DATA),
        ("0x10", INVALID_DATA),
        ("-123456", INVALID_DATA),
        ("+123456", INVALID_DATA),
        ("12 34", INVALID_DATA),
        (" ", INVALID_DATA),
        ("abc", INVALID_DATA),
        ("12345678901", INVALID_DATA),
        ("١٢٣٤٥٦", INVALID_DATA),
    ],
)
def test_complete_signup_code_types(api, new_app, database, code, expected):
    app = new_app()
    sign_up(api, app, "coder@example.com")
    body = {"handle": "coder@example.com"}
    if code is not None:
        body["code"] = code

    response = post_raw(api, "/api/appuser/completeSignup", app, json.dumps(body), "application/json")

    assert response.status_code == 400
    assert response.json() == expected
    record = pending_signup(database, app, "coder@example.com")
    assert record["status"] == "pending"
    assert attempts_used(app, "coder@example.com") == 0
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_complete_signup_rejects_non_ascii_digits(api, new_app, database):
    app = new_app()
    code = sign_up(api, app, "wide@example.com")
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))

    response = post_raw(
        api, "/api/appuser/completeSignup", app,
        json.dumps({"handle": "wide@example.com", "code": fullwidth}), "application/json",
    )

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert attempts_used(app, "wide@example.com") == 0
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


# Form bodies as the Swift SDK sends them


def test_swift_form_with_raw_json_metadata(api, new_app, database):
    app = new_app(metaData=[{"fieldName": "a", "path": "a", "required": True}])
    body = f'handle=swift%2Bios@example.com&password={PASSWORD}&metaData={{"a":"b c"}}'

    response = signup_raw(api, app, body, FORM)

    assert response.status_code == 200
    assert response.content == b"true"
    record = pending_signup(database, app, "swift+ios@example.com")
    assert record["status"] == "pending"
    assert record["metaData"] == {"a": "b c"}


def test_form_plus_decodes_to_space(api, new_app, database):
    # An unencoded `+` is a space in form encoding, so the handle is no e-mail address.
    app = new_app()

    response = signup_raw(api, app, f"handle=swift+ios@example.com&password={PASSWORD}", FORM)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


def test_form_name_without_value(api, new_app, database):
    app = new_app()

    bare_locale = signup_raw(api, app, f"handle=bare@example.com&password={PASSWORD}&locale", FORM)
    bare_handle = signup_raw(api, app, f"handle&password={PASSWORD}", FORM)

    assert bare_locale.status_code == 200
    assert bare_locale.content == b"true"
    assert pending_signup(database, app, "bare@example.com")["locale"] == "EN"
    assert bare_handle.status_code == 400
    assert bare_handle.json() == MISSING_PARAM
    assert signup_count(database, app) == 1


def test_form_malformed_escape_kept_literally(api, new_app, database):
    app = new_app()

    response = signup_raw(api, app, f"handle=odd%zz@example.com&password={PASSWORD}", FORM)

    assert response.status_code == 200
    assert pending_signup(database, app, "odd%zz@example.com") is not None


@pytest.mark.parametrize(
    "body",
    [
        f"handle=a@example.com&handle=b@example.com&password={PASSWORD}",
        f"handle=a@example.com&password={PASSWORD}&password={PASSWORD}",
    ],
)
def test_form_repeated_key_rejected(api, new_app, database, body):
    app = new_app()

    response = signup_raw(api, app, body, FORM)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


# Bodies without a usable content type


def test_json_without_content_type(api, new_app, database):
    app = new_app()
    body = json.dumps({"handle": "untyped@example.com", "password": PASSWORD})

    response = signup_raw(api, app, body, None)

    assert response.status_code == 200
    assert response.content == b"true"
    assert pending_signup(database, app, "untyped@example.com") is not None


def test_form_without_content_type(api, new_app, database):
    app = new_app()

    response = signup_raw(api, app, f"handle=untyped%2Bform@example.com&password={PASSWORD}", None)

    assert response.status_code == 200
    assert response.content == b"true"
    assert pending_signup(database, app, "untyped+form@example.com") is not None


@pytest.mark.parametrize("content_type", ["application/json", FORM, None])
def test_non_utf8_body_rejected(api, new_app, database, content_type):
    app = new_app()
    body = b'{"handle": "caf\xe9@example.com", "password": "' + PASSWORD.encode("ascii") + b'"}'

    response = signup_raw(api, app, body, content_type)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_unsupported_content_type_rejected(api, new_app, database, content_type):
    app = new_app()
    body = json.dumps({"handle": "typed@example.com", "password": PASSWORD})

    response = signup_raw(api, app, body, content_type)

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0


@pytest.mark.parametrize("body", ["", "   ", "{}"])
def test_empty_body_means_missing_fields(api, new_app, database, body):
    app = new_app()

    response = signup_raw(api, app, body)

    assert response.status_code == 400
    assert response.json() == MISSING_PARAM
    assert signup_count(database, app) == 0


def test_metadata_object_instead_of_string(api, new_app, database):
    # The SDKs send metaData as a JSON string; a plain object is accepted as well.
    app = new_app(metaData=[{"fieldName": "a", "path": "a", "required": True}])
    body = json.dumps({"handle": "object@example.com", "password": PASSWORD, "metaData": {"a": " b "}})

    response = signup_raw(api, app, body)

    assert response.status_code == 200
    assert pending_signup(database, app, "object@example.com")["metaData"] == {"a": "b"}


@pytest.mark.parametrize("metadata", ['{"a": 5}', '{"a": ["b"]}', '["b"]', "not json", 5, ["b"]])
def test_metadata_wrong_types(api, new_app, database, metadata):
    app = new_app(metaData=[{"fieldName": "a", "path": "a", "required": True}])
    body = json.dumps({"handle": "meta@example.com", "password": PASSWORD, "metaData": metadata})

    response = signup_raw(api, app, body)

    assert response.status_code == 400
    assert response.json() == INVALID_METADATA
    assert signup_count(database, app) == 0


def test_lone_surrogate_in_json_is_rejected(api, new_app, database):
    app = new_app()
    body = '{"handle": "a\\ud800@example.com", "password": "%s"}' % digest("pw")

    response = post_raw(api, "/api/appuser/signup", app, body, "application/json")

    assert response.status_code == 400
    assert response.json() == INVALID_DATA
    assert signup_count(database, app) == 0
