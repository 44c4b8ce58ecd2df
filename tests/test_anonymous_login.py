"""POST /api/appuser/loginAnonymous."""

from __future__ import annotations

import base64
import uuid

import jwt
import pytest

from cosync import db
from flows import error, register_user


def _handle() -> str:
    return f"ANON_{str(uuid.uuid4()).upper()}"


def _login(api, app, handle, header="app-token", **extra):
    return api.post("/api/appuser/loginAnonymous", headers={header: app["appToken"]}, json={"handle": handle, **extra})


def _claims(app, body):
    return jwt.decode(body["jwt"], base64.b64decode(app["appPublicKey"]), algorithms=["RS256"], audience="none")


@pytest.fixture
def anonymous_app(new_app):
    return lambda **fields: new_app(anonymousLoginEnabled=True, **fields)


def test_anonymous_login_creates_account(api, anonymous_app, database):
    app = anonymous_app()
    handle = _handle()
    response = _login(api, app, handle)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jwt", "access-token"}
    claims = _claims(app, body)
    assert claims["sub"] == handle
    access = jwt.decode(body["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"
    assert access["handle"] == handle
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": handle})
    assert user["anonymous"] is True
    assert user["status"] == "active"
    assert user["locale"] == "EN"
    assert user["password"] == ""
    assert user["metaData"] == {}


def test_anonymous_login_again_reuses_account(api, anonymous_app, database):
    app = anonymous_app()
    handle = _handle()
    first = _login(api, app, handle)
    second = _login(api, app, handle)
    assert first.status_code == second.status_code == 200
    assert _claims(app, second.json())["sub"] == handle
    assert database[db.USERS].count_documents({"appId": app["appId"], "handle": handle}) == 1
    # The access token works on user routes.
    user = api.get("/api/appuser/getUser", headers={"access-token": second.json()["access-token"]})
    assert user.status_code == 200
    assert user.json()["handle"] == handle


def test_anonymous_login_form_body_like_swift(api, anonymous_app):
    app = anonymous_app()
    handle = _handle()
    response = api.post("/api/appuser/loginAnonymous", headers={"app-token": app["appToken"]}, data=f"handle={handle}")
    assert response.status_code == 200, response.text
    assert _claims(app, response.json())["sub"] == handle


def test_anonymous_login_accepts_lower_case_uuid_like_kotlin(api, anonymous_app):
    app = anonymous_app()
    handle = f"ANON_{uuid.uuid4()}"
    assert _claims(app, _login(api, app, handle).json())["sub"] == handle


@pytest.mark.parametrize("handle", [
    "", None, 42, ["ANON_0123456789abcdef"], "anon_0123456789abcdef", "x_ANON_0123456789abcdef",
    "ANON_short", "ANON_0123456789abcdef ", "ANON_0123456789abcdef@example.com", "ANON_" + "a" * 129,
])
def test_anonymous_login_rejects_bad_handles(api, anonymous_app, database, handle):
    """W31: a handle must start with ANON_ and carry at least 16 random characters."""
    app = anonymous_app()
    response = _login(api, app, handle)
    assert response.status_code == 400
    assert response.json() == error(600, "invalid login credentials")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_anonymous_login_needs_enabled_app(api, new_app, anonymous_app, database):
    disabled = new_app()
    assert _login(api, disabled, _handle()).json() == error(414, "app does not support anonymous login")
    suspended = anonymous_app(status="inactive")
    assert _login(api, suspended, _handle()).json() == error(402, "app is suspended")
    migrated = anonymous_app(status="migrated")
    assert _login(api, migrated, _handle()).json() == error(413, "app is migrated")
    gone = anonymous_app()
    database[db.APPS].delete_one({"appId": gone["appId"]})
    assert _login(api, gone, _handle()).json() == error(401, "app no longer exist")


def test_anonymous_login_needs_app_token(api, anonymous_app):
    app = anonymous_app()
    assert api.post("/api/appuser/loginAnonymous", json={"handle": _handle()}).json() == error(400, "invalid app token")
    session = _login(api, app, _handle()).json()
    with_access_token = api.post(
        "/api/appuser/loginAnonymous", headers={"access-token": session["access-token"]}, json={"handle": _handle()}
    )
    assert with_access_token.json() == error(400, "invalid app token")


def test_anonymous_login_rejects_suspended_user(api, anonymous_app, database):
    """W13: a suspended anonymous user cannot log in again."""
    app = anonymous_app()
    handle = _handle()
    assert _login(api, app, handle).status_code == 200
    database[db.USERS].update_one({"appId": app["appId"], "handle": handle}, {"$set": {"status": "suspended"}})
    response = _login(api, app, handle)
    assert response.status_code == 400
    assert response.json() == error(404, "user account is suspended")


def test_anonymous_login_ignores_request_metadata(api, anonymous_app, database):
    """W2: request metaData never reaches the stored account or the JWT claims."""
    fields = [{"id": "1", "path": "name", "fieldName": "name", "required": True, "canEdit": True}]
    app = anonymous_app(metaData=fields)
    handle = _handle()
    response = _login(
        api, app, handle,
        metaData={"sub": "victim@example.com", "exp": 9999999999, "aud": "other", "email": "victim@example.com"},
    )
    assert response.status_code == 200, response.text
    claims = _claims(app, response.json())
    assert claims["sub"] == handle
    assert claims["aud"] == "none"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert claims["name"] == "ANON_name"
    assert claims["email"] == handle
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": handle})
    assert user["metaData"] == {}


def test_anonymous_login_metadata_string_ignored(api, anonymous_app, database):
    """W2: metaData sent as a JSON string is ignored too."""
    app = anonymous_app()
    handle = _handle()
    response = _login(api, app, handle, metaData='{"sub": "victim@example.com"}')
    assert _claims(app, response.json())["sub"] == handle
    assert database[db.USERS].find_one({"appId": app["appId"], "handle": handle})["metaData"] == {}


def test_anonymous_login_ignores_owner_and_password(api, anonymous_app, database):
    """W1 and W16: `owner` never sets the token scope, and no request password is stored."""
    app = anonymous_app()
    handle = _handle()
    response = _login(api, app, handle, owner="server", password="plain-text-secret")
    access = jwt.decode(response.json()["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"
    admin = api.get(f"/api/app/appId/{app['appId']}", headers={"server-secret": response.json()["access-token"]})
    assert admin.status_code == 401
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": handle})
    assert "plain-text-secret" not in str(user)


def test_anonymous_login_cannot_take_other_accounts(api, anonymous_app, database):
    """W31: only accounts created by anonymous login can be entered with their handle."""
    app = anonymous_app()
    handle = "ANON_0123456789abcdef0123"
    register_user(api, app, "real@example.com")
    # An account whose handle starts with ANON_ but that has a password (an imported user).
    database[db.USERS].update_one(
        {"appId": app["appId"], "handle": "real@example.com"},
        {"$set": {"handle": handle}},
    )
    response = _login(api, app, handle)
    assert response.status_code == 400
    assert response.json() == error(600, "invalid login credentials")


def test_anonymous_login_accepts_cosyncjwt_anonymous_account(api, anonymous_app, database):
    """Accounts written by CosyncJWT lack the `anonymous` flag; they still log in."""
    app = anonymous_app()
    handle = "ANON_legacy0123456789abcdef"
    database[db.USERS].insert_one(
        {"handle": handle, "password": "raw-request-value", "appId": app["appId"], "status": "active", "locale": "EN"}
    )
    response = _login(api, app, handle)
    assert response.status_code == 200, response.text
    assert _claims(app, response.json())["sub"] == handle


def test_anonymous_login_validates_locale(api, anonymous_app, database):
    app = anonymous_app(locales=["EN", "FR"])
    assert _login(api, app, _handle(), locale="XX").json() == error(602, "invalid data")
    handle = _handle()
    assert _login(api, app, handle, locale="fr").status_code == 200
    assert database[db.USERS].find_one({"appId": app["appId"], "handle": handle})["locale"] == "FR"


def test_anonymous_login_error_body_is_fresh(api, anonymous_app):
    """W4: error bodies carry only code and message."""
    app = anonymous_app()
    response = _login(api, app, "ANON_short")
    assert set(response.json()) == {"code", "message"}



def test_anonymous_accounts_per_address_are_limited(api, anonymous_app, database):
    app = anonymous_app()
    for _ in range(30):
        assert _login(api, app, _handle()).status_code == 200
    response = _login(api, app, _handle())
    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert int(response.headers["Retry-After"]) > 0
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 30
