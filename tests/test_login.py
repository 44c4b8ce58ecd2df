"""POST /api/appuser/login, GET /api/appuser/getUser and GET /api/appuser/getApplication."""

from __future__ import annotations

import base64
import datetime
import re

import bcrypt
import jwt
import pytest

from cosync import db
from cosync.keys import seal_app_key
from cosync.secrets import get_secrets
from flows import digest, error, register_user, sign_up


def _login(api, app, handle, password, header="app-token"):
    return api.post(
        "/api/appuser/login",
        headers={header: app["appToken"]},
        json={"handle": handle, "password": digest(password)},
    )


def test_login_returns_jwt_and_access_token(api, new_app, database):
    app = new_app()
    register_user(api, app, "lin@example.com", "pw one")
    before = datetime.datetime.now(datetime.timezone.utc)
    response = _login(api, app, " LIN@example.com", "pw one")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jwt", "access-token"}
    public_pem = base64.b64decode(app["appPublicKey"])
    claims = jwt.decode(body["jwt"], public_pem, algorithms=["RS256"], audience="none")
    assert claims["sub"] == "lin@example.com"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert jwt.get_unverified_header(body["jwt"])["kid"]
    access = jwt.decode(body["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"
    assert access["handle"] == "lin@example.com"
    assert access["appId"] == app["appId"]
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "lin@example.com"})
    assert user["lastLogin"] >= before.replace(microsecond=0)


def test_login_ignores_owner_field(api, new_app):
    """W1: the access token's scope is always "user", whatever the request contains."""
    app = new_app()
    register_user(api, app, "owner@example.com", "pw")
    response = api.post(
        "/api/appuser/login",
        headers={"app-token": app["appToken"]},
        json={"handle": "owner@example.com", "password": digest("pw"), "owner": "server"},
    )
    access = jwt.decode(response.json()["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"
    admin = api.get(f"/api/app/appId/{app['appId']}", headers={"server-secret": response.json()["access-token"]})
    assert admin.status_code == 401
    assert admin.json() == error(400, "invalid admin token")


def test_login_wrong_password(api, new_app):
    app = new_app()
    register_user(api, app, "wp@example.com", "right")
    response = _login(api, app, "wp@example.com", "wrong")
    assert response.status_code == 400
    assert response.json() == error(600, "invalid login credentials")


def test_login_unknown_handle(api, new_app):
    app = new_app()
    assert _login(api, app, "ghost@example.com", "pw").json() == error(600, "invalid login credentials")


def test_login_pending_signup_only_for_password_owner(api, new_app):
    app = new_app()
    sign_up(api, app, "pending@example.com", "mine")
    assert _login(api, app, "pending@example.com", "mine").json() == error(608, "account has not been verified")
    assert _login(api, app, "pending@example.com", "guess").json() == error(600, "invalid login credentials")


def test_login_suspended_user(api, new_app, database):
    app = new_app()
    register_user(api, app, "sus@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "sus@example.com"}, {"$set": {"status": "suspend"}})
    assert _login(api, app, "sus@example.com", "pw").json() == error(404, "user account is suspended")
    # The suspension is revealed only to the holder of the right password.
    assert _login(api, app, "sus@example.com", "guess").json() == error(600, "invalid login credentials")


def test_login_user_name_needs_app_setting(api, new_app):
    app = new_app()
    assert _login(api, app, "just-a-name", "pw").json() == error(606, "app does not support username login")


def test_login_by_user_name(api, new_app, database):
    app = new_app(userNamesEnabled=True)
    register_user(api, app, "named@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "named@example.com"}, {"$set": {"userName": "ada"}})
    response = _login(api, app, "ADA", "pw")
    assert response.status_code == 200
    claims = jwt.decode(response.json()["jwt"], options={"verify_signature": False})
    assert claims["sub"] == "named@example.com"
    assert claims["userName"] == "ada"


def test_login_missing_fields(api, new_app):
    app = new_app()
    headers = {"app-token": app["appToken"]}
    assert api.post("/api/appuser/login", headers=headers, json={"handle": "a@example.com"}).json() == error(403, "missing parameter")
    assert api.post("/api/appuser/login", headers=headers, json={"password": digest("x")}).json() == error(403, "missing parameter")


def test_login_requires_app_scope(api, new_app):
    app = new_app()
    session = register_user(api, app, "scope@example.com", "pw")
    no_token = api.post("/api/appuser/login", json={"handle": "scope@example.com", "password": digest("pw")})
    assert no_token.json() == error(400, "invalid app token")
    with_access = api.post(
        "/api/appuser/login",
        headers={"access-token": session["access-token"]},
        json={"handle": "scope@example.com", "password": digest("pw")},
    )
    assert with_access.json() == error(400, "invalid app token")


def test_login_suspended_and_migrated_app(api, new_app, database):
    app = new_app()
    register_user(api, app, "appstat@example.com", "pw")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": "inactive"}})
    assert _login(api, app, "appstat@example.com", "pw").json() == error(402, "app is suspended")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": "migrated"}})
    assert _login(api, app, "appstat@example.com", "pw").json() == error(413, "app is migrated")


def test_login_missing_required_metadata(api, new_app, database):
    app = new_app()
    register_user(api, app, "md@example.com", "pw")
    field = {"id": "1", "path": "name", "fieldName": "name", "required": True, "canEdit": True}
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"metaData": [field]}})
    assert _login(api, app, "md@example.com", "pw").json() == error(604, "invalid metadata")


def test_login_upgrades_legacy_bcrypt_hash(api, new_app, database):
    app = new_app()
    register_user(api, app, "legacy@example.com", "old pw")
    legacy = bcrypt.hashpw(digest("old pw").encode(), bcrypt.gensalt(rounds=10, prefix=b"2b")).decode()
    database[db.USERS].update_one({"appId": app["appId"], "handle": "legacy@example.com"}, {"$set": {"password": legacy}})

    assert _login(api, app, "legacy@example.com", "old pw").status_code == 200
    stored = database[db.USERS].find_one({"appId": app["appId"], "handle": "legacy@example.com"})["password"]
    assert stored.startswith("$argon2id$")
    assert _login(api, app, "legacy@example.com", "old pw").status_code == 200


def test_get_user_returns_profile(api, new_app):
    app = new_app()
    session = register_user(api, app, "profile@example.com", "pw")
    response = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})

    assert response.status_code == 200
    body = response.json()
    assert body["handle"] == "profile@example.com"
    assert body["appId"] == app["appId"]
    assert body["status"] == "active"
    assert body["locale"] == "EN"
    assert body["metaData"] == {}
    assert body["loginProvider"] == ""
    assert body["twoFactorPhoneVerification"] is False
    assert body["twoFactorGoogleVerification"] is False
    iso_with_milliseconds = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    for name in ("lastLogin", "createdAt", "updatedAt"):
        assert re.fullmatch(iso_with_milliseconds, body[name]), name
    assert "password" not in body
    assert "tokenVersion" not in body
    assert "_id" not in body


def test_get_user_needs_access_token(api, new_app):
    app = new_app()
    assert api.get("/api/appuser/getUser").json() == error(602, "invalid data")
    with_app_token = api.get("/api/appuser/getUser", headers={"app-token": app["appToken"]})
    assert with_app_token.json() == error(602, "invalid data")
    forged = api.get("/api/appuser/getUser", headers={"access-token": app["appToken"] + "x"})
    assert forged.json() == error(405, "invalid access token")


def test_get_user_app_status(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "status@example.com", "pw")
    headers = {"access-token": session["access-token"]}
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": "inactive"}})
    assert api.get("/api/appuser/getUser", headers=headers).json() == error(402, "app is suspended")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": "migrated"}})
    assert api.get("/api/appuser/getUser", headers=headers).json() == error(413, "app is migrated")
    database[db.APPS].delete_one({"appId": app["appId"]})
    assert api.get("/api/appuser/getUser", headers=headers).json() == error(401, "app no longer exist")


def test_get_user_revoked_token(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "revoked@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "revoked@example.com"}, {"$inc": {"tokenVersion": 1}})
    response = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert response.json() == error(405, "invalid access token")


def test_get_user_deleted_user(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "gone@example.com", "pw")
    database[db.USERS].delete_one({"appId": app["appId"], "handle": "gone@example.com"})
    response = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert response.json() == error(602, "invalid data")


def test_get_application_flags_and_types(api, new_app):
    app = new_app(emailExtensionAPIKey="stored-secret", TWILIOToken="stored-secret")
    response = api.get("/api/appuser/getApplication", headers={"app-token": app["appToken"]})

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == app["name"]
    for name in ("signupEnabled", "invitationEnabled"):
        assert body[name] is True, name
    for name in ("anonymousLoginEnabled", "userNamesEnabled", "googleLoginEnabled", "appleLoginEnabled", "passwordFilter"):
        assert body[name] is False, name
    assert body["signupFlow"] == "code"
    assert body["twoFactorVerification"] == "none"
    assert body["passwordMinLength"] == 5
    for name in ("passwordMinUpper", "passwordMinLower", "passwordMinDigit", "passwordMinSpecial"):
        assert body[name] == 0, name
    assert body["appData"] == {}
    assert body["locales"] == ["EN"]
    for hidden in ("appId", "appToken", "appPrivateKey", "appPublicKey", "appSecret", "emailExtensionAPIKey", "TWILIOToken", "_id"):
        assert hidden not in body, hidden
    assert "stored-secret" not in response.text


def test_get_application_with_access_token_and_query(api, new_app):
    app = new_app()
    session = register_user(api, app, "ga@example.com", "pw")
    by_access = api.get("/api/appuser/getApplication", headers={"access-token": session["access-token"]})
    assert by_access.json()["name"] == app["name"]
    by_query = api.get("/api/appuser/getApplication", params={"appToken": app["appToken"]})
    assert by_query.json()["name"] == app["name"]


def test_get_application_errors(api, new_app, database):
    app = new_app()
    assert api.get("/api/appuser/getApplication").json() == error(602, "invalid data")
    database[db.APPS].delete_one({"appId": app["appId"]})
    gone = api.get("/api/appuser/getApplication", headers={"app-token": app["appToken"]})
    assert gone.json() == error(401, "app no longer exist")


@pytest.mark.parametrize("sealed", [False, True], ids=["not decryptable", "not a PEM key"])
def test_unusable_app_key_leaves_last_login(api, new_app, database, sealed):
    app = new_app()
    register_user(api, app, "keyless@example.com")
    assert _login(api, app, "keyless@example.com", "correct horse").status_code == 200
    before = database[db.USERS].find_one({"appId": app["appId"], "handle": "keyless@example.com"})["lastLogin"]
    broken = base64.b64encode(b"not a key").decode()
    if sealed:
        broken = seal_app_key(get_secrets().encryption_key, broken, app["appId"], "appPrivateKey")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"appPrivateKey": broken}})

    response = _login(api, app, "keyless@example.com", "correct horse")

    assert (response.status_code, response.json()) == (400, error(500, "internal server error"))
    after = database[db.USERS].find_one({"appId": app["appId"], "handle": "keyless@example.com"})["lastLogin"]
    assert after == before
