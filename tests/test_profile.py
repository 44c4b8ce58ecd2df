"""Profile routes: userNameAvailable, setUserName, setLocale and setUserMetadata."""

from __future__ import annotations

import jwt
import pytest

from cosync import db
from cosync.services.users import revoke_tokens
from flows import digest, error, register_user
from two_factor_helpers import PASSWORD, login, user_document, user_post

HANDLE = "barbara@example.com"


@pytest.fixture
def names_app(new_app):
    return new_app(userNamesEnabled=True)


@pytest.fixture
def access_token(api, names_app) -> str:
    return register_user(api, names_app, HANDLE)["access-token"]


def available(api, access_token, name):
    return api.get("/api/appuser/userNameAvailable", headers={"access-token": access_token}, params={"userName": name})


def test_user_name_available_and_taken(api, names_app, access_token):
    free = available(api, access_token, "barbara")
    assert free.status_code == 200
    assert free.json() == {"available": True}
    assert user_post(api, access_token, "setUserName", json={"userName": "Barbara"}).content == b"true"
    assert available(api, access_token, "barbara").json() == {"available": False}
    assert available(api, access_token, " BARBARA ").json() == {"available": False}


def test_user_name_available_errors(api, new_app, names_app, access_token):
    missing = api.get("/api/appuser/userNameAvailable", headers={"access-token": access_token})
    assert missing.json() == error(403, "missing parameter")
    invalid = available(api, access_token, "a@b")
    assert invalid.json() == error(602, "invalid data")
    no_user = api.get(
        "/api/appuser/userNameAvailable", headers={"app-token": names_app["appToken"]}, params={"userName": "abc"}
    )
    assert no_user.json() == error(602, "invalid data")
    plain = new_app()
    plain_token = register_user(api, plain, HANDLE)["access-token"]
    assert available(api, plain_token, "barbara").json() == error(606, "app does not support username login")


def test_user_name_available_blocked_for_suspended_app(api, names_app, access_token):
    """W13: userNameAvailable checks the app's status."""
    db.collection(db.APPS).update_one({"appId": names_app["appId"]}, {"$set": {"status": "inactive"}})
    assert available(api, access_token, "barbara").json() == error(402, "app is suspended")


def test_set_user_name_then_login_by_name(api, names_app, access_token):
    response = user_post(api, access_token, "setUserName", data="userName=Barb.1")
    assert response.status_code == 200
    assert response.content == b"true"
    user = api.get("/api/appuser/getUser", headers={"access-token": access_token}).json()
    assert user["userName"] == "barb.1"
    session = login(api, names_app, "BARB.1")
    assert session.status_code == 200
    assert jwt.decode(session.json()["jwt"], options={"verify_signature": False})["userName"] == "barb.1"


def test_set_user_name_once(api, names_app, access_token):
    assert user_post(api, access_token, "setUserName", json={"userName": "barbara"}).content == b"true"
    again = user_post(api, access_token, "setUserName", json={"userName": "barbara2"})
    assert again.json() == error(602, "invalid data")
    assert user_document(names_app, HANDLE)["userName"] == "barbara"


def test_set_user_name_taken_case_insensitive(api, names_app, access_token):
    other = register_user(api, names_app, "other@example.com")["access-token"]
    assert user_post(api, other, "setUserName", json={"userName": "barbara"}).content == b"true"
    taken = user_post(api, access_token, "setUserName", json={"userName": "BARBARA"})
    assert taken.status_code == 400
    assert taken.json() == error(605, "user name already assigned")
    assert "userName" not in user_document(names_app, HANDLE)


def test_user_name_claim_freed_when_holder_is_gone(api, names_app, access_token):
    other = register_user(api, names_app, "other@example.com")["access-token"]
    assert user_post(api, other, "setUserName", json={"userName": "barbara"}).content == b"true"
    db.collection(db.USERS).delete_one({"appId": names_app["appId"], "handle": "other@example.com"})
    assert user_post(api, access_token, "setUserName", json={"userName": "barbara"}).content == b"true"


@pytest.mark.parametrize("name", ["ada@example.com", "ab", "a" * 33, "-abc", "ada lovelace", "adá", "ada+1"])
def test_set_user_name_rejects_invalid(api, names_app, access_token, name):
    """W14: user names are validated (no `@`, a fixed charset and length)."""
    response = user_post(api, access_token, "setUserName", json={"userName": name})
    assert response.json() == error(602, "invalid data")
    assert "userName" not in user_document(names_app, HANDLE)


def test_set_user_name_errors(api, new_app, names_app, access_token):
    assert user_post(api, access_token, "setUserName", json={}).json() == error(403, "missing parameter")
    assert user_post(api, access_token, "setUserName", json={"userName": ["a"]}).json() == error(602, "invalid data")
    plain = new_app()
    plain_token = register_user(api, plain, HANDLE)["access-token"]
    off = user_post(api, plain_token, "setUserName", json={"userName": "barbara"})
    assert off.json() == error(606, "app does not support username login")
    db.collection(db.APPS).update_one({"appId": names_app["appId"]}, {"$set": {"status": "migrated"}})
    assert user_post(api, access_token, "setUserName", json={"userName": "barbara"}).json() == error(413, "app is migrated")


def test_set_user_name_rejects_revoked_token(api, names_app, access_token):
    revoke_tokens(names_app["appId"], HANDLE)
    response = user_post(api, access_token, "setUserName", json={"userName": "barbara"})
    assert response.json() == error(405, "invalid access token")


def test_set_locale(api, new_app):
    app = new_app(locales=["EN", "FR"])
    access_token = register_user(api, app, HANDLE)["access-token"]
    response = user_post(api, access_token, "setLocale", json={"locale": "fr"})
    assert response.status_code == 200
    assert response.content == b"true"
    assert api.get("/api/appuser/getUser", headers={"access-token": access_token}).json()["locale"] == "FR"
    assert user_post(api, access_token, "setLocale", data="locale=EN").content == b"true"


def test_set_locale_errors(api, new_app):
    app = new_app(locales=["EN", "FR"])
    access_token = register_user(api, app, HANDLE)["access-token"]
    assert user_post(api, access_token, "setLocale", json={}).json() == error(403, "missing parameter")
    assert user_post(api, access_token, "setLocale", json={"locale": "DE"}).json() == error(602, "invalid data")
    assert user_post(api, access_token, "setLocale", json={"locale": "XX"}).json() == error(602, "invalid data")
    assert user_post(api, access_token, "setLocale", json={"locale": 1}).json() == error(602, "invalid data")
    db.collection(db.USERS).update_one({"appId": app["appId"], "handle": HANDLE}, {"$set": {"status": "suspended"}})
    assert user_post(api, access_token, "setLocale", json={"locale": "FR"}).json() == error(404, "user account is suspended")
    no_user = api.post("/api/appuser/setLocale", headers={"app-token": app["appToken"]}, json={"locale": "FR"})
    assert no_user.json() == error(602, "invalid data")


FIELDS = [
    {"id": "1", "path": "user_data.name", "fieldName": "name", "required": True, "canEdit": True},
    {"id": "2", "path": "team", "fieldName": "team", "required": False, "canEdit": False},
    {"id": "3", "path": "nickname", "fieldName": "nickname", "required": False, "canEdit": True},
]


@pytest.fixture
def metadata_app(new_app):
    return new_app(metaData=FIELDS)


def metadata_user(api, app) -> str:
    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        json={"handle": HANDLE, "password": digest(PASSWORD), "metaData": '{"user_data": {"name": "Barbara"}, "team": "blue"}'},
    )
    assert response.content == b"true"
    from flows import latest_code

    done = api.post(
        "/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json={"handle": HANDLE, "code": latest_code(HANDLE)}
    )
    assert done.status_code == 200, done.text
    return done.json()["access-token"]


def test_set_user_metadata_string_returned_as_object(api, metadata_app):
    access_token = metadata_user(api, metadata_app)
    response = user_post(api, access_token, "setUserMetadata", json={"metaData": '{"user_data": {"name": " Babs "}, "nickname": "b"}'})
    assert response.status_code == 200
    assert response.content == b"true"
    user = api.get("/api/appuser/getUser", headers={"access-token": access_token}).json()
    assert user["metaData"] == {"user_data": {"name": "Babs"}, "team": "blue", "nickname": "b"}
    claims = jwt.decode(login(api, metadata_app, HANDLE).json()["jwt"], options={"verify_signature": False})
    assert claims["user_data"] == {"name": "Babs"}


def test_set_user_metadata_object_and_swift_form(api, metadata_app):
    access_token = metadata_user(api, metadata_app)
    as_object = user_post(api, access_token, "setUserMetadata", json={"metaData": {"nickname": "obj"}})
    assert as_object.content == b"true"
    as_form = user_post(api, access_token, "setUserMetadata", data='metaData={"nickname": "form"}')
    assert as_form.content == b"true"
    assert user_document(metadata_app, HANDLE)["metaData"]["nickname"] == "form"


def test_set_user_metadata_drops_undeclared_keys(api, metadata_app):
    access_token = metadata_user(api, metadata_app)
    assert user_post(api, access_token, "setUserMetadata", json={"metaData": {"nickname": "n", "admin": "yes"}}).content == b"true"
    assert "admin" not in user_document(metadata_app, HANDLE)["metaData"]


def test_set_user_metadata_errors(api, new_app, metadata_app):
    access_token = metadata_user(api, metadata_app)
    cases = [
        ({"metaData": "not json"}, error(602, "invalid data")),
        ({"metaData": "[1, 2]"}, error(602, "invalid data")),
        ({}, error(602, "invalid data")),
        ({"metaData": {"team": "red"}}, error(604, "invalid metadata")),
        ({"metaData": {"nickname": 5}}, error(604, "invalid metadata")),
        ({"metaData": {"nickname": "x" * 1001}}, error(604, "invalid metadata")),
    ]
    for body, expected in cases:
        assert user_post(api, access_token, "setUserMetadata", json=body).json() == expected, body
    same_team = user_post(api, access_token, "setUserMetadata", json={"metaData": {"team": "blue"}})
    assert same_team.content == b"true"
    assert user_document(metadata_app, HANDLE)["metaData"]["team"] == "blue"
    no_token = api.post("/api/appuser/setUserMetadata", json={"metaData": {"nickname": "n"}})
    assert no_token.json() == error(403, "missing parameter")
    plain = new_app()
    plain_token = register_user(api, plain, HANDLE)["access-token"]
    no_fields = user_post(api, plain_token, "setUserMetadata", json={"metaData": {"nickname": "n"}})
    assert no_fields.json() == error(602, "invalid data")


def test_set_user_metadata_required_field_missing(api, new_app):
    optional = {"id": "1", "path": "name", "fieldName": "name", "required": False, "canEdit": True}
    app = new_app(metaData=[optional])
    access_token = register_user(api, app, HANDLE)["access-token"]
    # The operator makes the field required after the user signed up without it.
    db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": {"metaData": [{**optional, "required": True}]}})
    response = user_post(api, access_token, "setUserMetadata", json={"metaData": {"other": "x"}})
    assert response.json() == error(604, "invalid metadata")
    assert user_post(api, access_token, "setUserMetadata", json={"metaData": {"name": "Barbara"}}).content == b"true"


def test_metadata_cannot_override_registered_claims(api, new_app):
    """W2: editable metadata fields never replace registered JWT claims."""
    app = new_app(metaData=[
        {"id": "1", "path": "sub", "fieldName": "sub", "required": False, "canEdit": True},
        {"id": "2", "path": "exp", "fieldName": "exp", "required": False, "canEdit": True},
        {"id": "3", "path": "email", "fieldName": "mail", "required": False, "canEdit": True},
    ])
    access_token = register_user(api, app, HANDLE)["access-token"]
    response = user_post(api, access_token, "setUserMetadata", json={"metaData": {"sub": "victim@example.com", "exp": "9999999999", "email": "victim@example.com"}})
    assert response.content == b"true"
    claims = jwt.decode(login(api, app, HANDLE).json()["jwt"], options={"verify_signature": False})
    assert claims["sub"] == HANDLE
    assert claims["email"] == HANDLE
    assert claims["exp"] != 9999999999
