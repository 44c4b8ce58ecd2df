"""POST /api/appuser/invite and POST /api/appuser/register."""

from __future__ import annotations

import base64
import datetime
import json

import jwt
import pytest

from cosync import db
from cosync.mail import read_outbox
from flows import digest, error, latest_code, register_user


def _invite(api, session, handle, **extra):
    return api.post(
        "/api/appuser/invite", headers={"access-token": session["access-token"]}, json={"handle": handle, **extra}
    )


def _register(api, app, handle, code, password="invited pw", header="app-token", token=None, **extra):
    body = {"handle": handle, "password": digest(password), "code": code, **extra}
    return api.post("/api/appuser/register", headers={header: token or app["appToken"]}, json=body)


def _claims(app, token):
    return jwt.decode(token, base64.b64decode(app["appPublicKey"]), algorithms=["RS256"], audience="none")


@pytest.fixture
def inviter(api, new_app):
    """An app and the session of a user who may invite."""

    def create(**fields):
        app = new_app(**fields)
        return app, register_user(api, app, "host@example.com")

    return create


def test_invite_emails_code_to_invitee(api, inviter, database):
    """W10 and W11: the code goes to the invitee, is stored only as a keyed hash, and the
    invite records its sender."""
    app, session = inviter()
    before = datetime.datetime.now(datetime.timezone.utc)
    response = _invite(api, session, " New@Example.com ", senderUserId="realm-user-1")

    assert response.status_code == 200
    assert response.content == b"true"
    message = read_outbox()[-1]
    assert message["to"] == "new@example.com"
    assert message["subject"] == f"You are invited to {app['name']}"
    code = latest_code("new@example.com")
    stored = database[db.INVITES].find_one({"appId": app["appId"], "handle": "new@example.com"})
    assert stored["senderHandle"] == "host@example.com"
    assert stored["senderUserId"] == "realm-user-1"
    assert stored["status"] == "pending"
    assert code not in json.dumps(stored, default=str)
    assert "code" not in stored
    lifetime = stored["expiresAt"] - before
    assert datetime.timedelta(days=7) - datetime.timedelta(minutes=1) < lifetime <= datetime.timedelta(days=7, minutes=1)


def test_register_with_invite_code(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "guest@example.com").status_code == 200
    code = latest_code("guest@example.com")
    response = _register(api, app, "guest@example.com", code)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jwt", "access-token", "signed-user-token"}
    assert _claims(app, body["jwt"])["sub"] == "guest@example.com"
    legacy = jwt.decode(body["signed-user-token"], base64.b64decode(app["appPublicKey"]), algorithms=["RS256"])
    assert legacy["handle"] == "guest@example.com"
    assert legacy["appId"] == app["appId"]
    assert legacy["code"] == int(code)
    assert legacy["metaData"] == ""
    assert legacy["senderHandle"] == "host@example.com"
    stored = database[db.INVITES].find_one({"appId": app["appId"], "handle": "guest@example.com"})
    assert stored["status"] == "verified"
    assert read_outbox()[-1]["subject"] == f"Welcome to {app['name']}"
    login = api.post(
        "/api/appuser/login",
        headers={"app-token": app["appToken"]},
        json={"handle": "guest@example.com", "password": digest("invited pw")},
    )
    assert login.status_code == 200


def test_invite_and_register_form_bodies_like_swift(api, inviter):
    app, session = inviter()
    # Swift sends a nil senderUserId as a bare name and pre-encodes `+` in handles as %2B.
    response = api.post(
        "/api/appuser/invite",
        headers={"access-token": session["access-token"]},
        data="handle=sw%2Btag@example.com&senderUserId",
    )
    assert response.status_code == 200, response.text
    code = latest_code("sw+tag@example.com")
    registered = api.post(
        "/api/appuser/register",
        headers={"app-token": app["appToken"]},
        data=f"handle=sw%2Btag@example.com&password={digest('pw')}&code={code}",
    )
    assert registered.status_code == 200, registered.text
    assert _claims(app, registered.json()["jwt"])["sub"] == "sw+tag@example.com"


def test_invite_without_sender_id_uses_inviter_handle(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "nosender@example.com").status_code == 200
    stored = database[db.INVITES].find_one({"appId": app["appId"], "handle": "nosender@example.com"})
    assert stored["senderUserId"] == "host@example.com"


def test_invite_with_app_token_like_kotlin(api, inviter, database):
    """Kotlin sends the public app token; without a signed-in sender the invite is refused."""
    app, _ = inviter()
    for header in ("app-token", "access-token"):
        response = api.post("/api/appuser/invite", headers={header: app["appToken"]}, json={"handle": "k@example.com"})
        assert response.status_code == 400
        assert response.json() == error(403, "missing parameter")
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0


def test_register_with_access_token_like_js(api, inviter):
    """JS holding a session sends `access-token` on register."""
    app, session = inviter()
    assert _invite(api, session, "js@example.com").status_code == 200
    response = _register(api, app, "js@example.com", latest_code("js@example.com"), header="access-token",
                         token=session["access-token"])
    assert response.status_code == 200, response.text


def test_invite_rejects_bad_requests(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "").json() == error(403, "missing parameter")
    assert _invite(api, session, "not-an-address").json() == error(602, "invalid data")
    assert _invite(api, session, {"$ne": 1}).json() == error(602, "invalid data")
    assert _invite(api, session, "host@example.com").json() == error(601, "handle already registered")
    assert _invite(api, session, "loc@example.com", locale="XX").json() == error(602, "invalid data")
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0


def test_invite_validates_invite_metadata(api, inviter, database):
    fields = [{"id": "1", "path": "team", "fieldName": "team", "required": True}]
    app, session = inviter(metaDataInvite=fields)
    assert _invite(api, session, "m@example.com").json() == error(604, "invalid metadata")
    assert _invite(api, session, "m@example.com", metaData="{bad").json() == error(604, "invalid metadata")
    assert _invite(api, session, "m@example.com", metaData='{"team": 7}').json() == error(604, "invalid metadata")
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0


def test_invite_metadata_flows_into_account(api, inviter, database):
    app, session = inviter(
        metaData=[{"id": "1", "path": "name", "fieldName": "name", "required": False, "canEdit": True},
                  {"id": "2", "path": "org.team", "fieldName": "team", "required": False, "canEdit": False}],
        metaDataInvite=[{"id": "3", "path": "org.team", "fieldName": "team", "required": True}],
    )
    assert _invite(api, session, "mt@example.com", metaData='{"org": {"team": " blue "}}').status_code == 200
    response = _register(api, app, "mt@example.com", latest_code("mt@example.com"),
                         metaData='{"name": "Mo", "org": {"team": "red"}}')
    assert response.status_code == 200, response.text
    claims = _claims(app, response.json()["jwt"])
    assert claims["name"] == "Mo"
    assert claims["org"] == {"team": "blue"}
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "mt@example.com"})
    assert user["metaData"] == {"name": "Mo", "org": {"team": "blue"}}
    legacy = jwt.decode(response.json()["signed-user-token"], base64.b64decode(app["appPublicKey"]), algorithms=["RS256"])
    assert json.loads(legacy["metaData"]) == {"name": "Mo", "org": {"team": "blue"}}


def test_invite_and_register_need_invitations_on(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "off@example.com").status_code == 200
    code = latest_code("off@example.com")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"invitationEnabled": False}})
    assert _invite(api, session, "off2@example.com").json() == error(406, "app does not support invitaion")
    assert _register(api, app, "off@example.com", code).json() == error(406, "app does not support invitaion")


def test_invite_and_register_check_app_status(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "stat@example.com").status_code == 200
    code = latest_code("stat@example.com")
    for status, expected in (("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))):
        database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": status}})
        assert _invite(api, session, "other@example.com").json() == expected
        assert _register(api, app, "stat@example.com", code).json() == expected
    database[db.APPS].delete_one({"appId": app["appId"]})
    assert _invite(api, session, "other@example.com").json() == error(401, "app no longer exist")
    assert _register(api, app, "stat@example.com", code).json() == error(401, "app no longer exist")


def test_invite_rejects_revoked_access_token(api, inviter, database):
    app, session = inviter()
    database[db.USERS].update_one({"appId": app["appId"], "handle": "host@example.com"}, {"$inc": {"tokenVersion": 1}})
    assert _invite(api, session, "rv@example.com").json() == error(405, "invalid access token")


def test_register_rejects_missing_and_malformed_fields(api, inviter):
    app, session = inviter()
    assert _invite(api, session, "f@example.com").status_code == 200
    code = latest_code("f@example.com")
    missing = error(403, "missing parameter")
    password = digest("pw")
    post = lambda body: api.post("/api/appuser/register", headers={"app-token": app["appToken"]}, json=body).json()  # noqa: E731
    assert post({"password": password, "code": code}) == missing
    assert post({"handle": "f@example.com", "code": code}) == missing
    assert post({"handle": "f@example.com", "password": password}) == missing
    assert post({"handle": "f@example.com", "password": "short", "code": code}) == error(602, "invalid data")
    assert post({"handle": "f@example.com", "password": password, "code": "12ab56"}) == error(602, "invalid data")
    assert post({"handle": ["f@example.com"], "password": password, "code": code}) == error(602, "invalid data")
    assert post({"handle": "f@example.com", "password": password, "code": code, "locale": "XX"}) == error(602, "invalid data")
    assert api.post("/api/appuser/register", json={"handle": "f@example.com"}).json() == error(400, "invalid app token")


def test_register_with_wrong_code(api, inviter, database):
    app, session = inviter()
    assert _invite(api, session, "w@example.com").status_code == 200
    code = latest_code("w@example.com")
    wrong = "100000" if code != "100000" else "100001"
    assert _register(api, app, "w@example.com", wrong).json() == error(602, "invalid data")
    assert _register(api, app, "nobody@example.com", code).json() == error(602, "invalid data")
    assert database[db.USERS].count_documents({"appId": app["appId"], "handle": "w@example.com"}) == 0


def test_invite_code_dies_after_five_wrong_guesses(api, inviter, database):
    """W8: five wrong guesses kill the invitation code, even the right one fails afterwards."""
    app, session = inviter()
    assert _invite(api, session, "bf@example.com").status_code == 200
    code = latest_code("bf@example.com")
    wrong = [str(value) for value in range(100000, 100007) if str(value) != code][:5]
    for guess in wrong:
        assert _register(api, app, "bf@example.com", guess).json() == error(602, "invalid data")
    assert _register(api, app, "bf@example.com", code).json() == error(411, "signup code expired.")
    assert database[db.USERS].count_documents({"appId": app["appId"], "handle": "bf@example.com"}) == 0


def test_invite_code_works_once(api, inviter):
    app, session = inviter()
    assert _invite(api, session, "once@example.com").status_code == 200
    code = latest_code("once@example.com")
    assert _register(api, app, "once@example.com", code).status_code == 200
    assert _register(api, app, "once@example.com", code, password="other").json() == error(601, "handle already registered")


def test_invite_code_expires(api, inviter, database):
    """W13 (admin list): invitation codes expire after seven days."""
    app, session = inviter()
    assert _invite(api, session, "exp@example.com").status_code == 200
    code = latest_code("exp@example.com")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    database[db.INVITES].update_one({"appId": app["appId"], "handle": "exp@example.com"}, {"$set": {"expiresAt": past}})
    assert _register(api, app, "exp@example.com", code).json() == error(411, "signup code expired.")


def test_reinvite_replaces_code(api, inviter):
    app, session = inviter()
    assert _invite(api, session, "re@example.com").status_code == 200
    first = latest_code("re@example.com")
    assert _invite(api, session, "re@example.com").status_code == 200
    second = latest_code("re@example.com")
    if first != second:
        assert _register(api, app, "re@example.com", first).json() == error(602, "invalid data")
    assert _register(api, app, "re@example.com", second).status_code == 200


def test_register_lower_cases_handle(api, inviter, database):
    """W22: a mixed-case handle is stored lower-cased, so the invitee can log in."""
    app, session = inviter()
    assert _invite(api, session, "mixed@example.com").status_code == 200
    response = _register(api, app, "  Mixed@Example.COM ", latest_code("mixed@example.com"))
    assert response.status_code == 200, response.text
    assert database[db.USERS].find_one({"appId": app["appId"], "handle": "mixed@example.com"}) is not None
    login = api.post(
        "/api/appuser/login",
        headers={"app-token": app["appToken"]},
        json={"handle": "MIXED@example.com", "password": digest("invited pw")},
    )
    assert login.status_code == 200


def test_register_keeps_invite_when_account_exists(api, inviter, database):
    """W22: the invite is not used up when the handle already has an account."""
    app, session = inviter()
    assert _invite(api, session, "taken@example.com").status_code == 200
    code = latest_code("taken@example.com")
    register_user(api, app, "taken@example.com")
    assert _register(api, app, "taken@example.com", code).json() == error(601, "handle already registered")
    stored = database[db.INVITES].find_one({"appId": app["appId"], "handle": "taken@example.com"})
    assert stored["status"] == "pending"


def test_register_ignores_owner(api, inviter):
    """W1: the access token's scope is "user" whatever `owner` contains."""
    app, session = inviter()
    assert _invite(api, session, "own@example.com").status_code == 200
    response = _register(api, app, "own@example.com", latest_code("own@example.com"), owner="server")
    access = jwt.decode(response.json()["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"


def test_register_validates_app_metadata(api, inviter):
    fields = [{"id": "1", "path": "name", "fieldName": "name", "required": True, "canEdit": True}]
    app, session = inviter()
    assert _invite(api, session, "req@example.com").status_code == 200
    code = latest_code("req@example.com")
    db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": {"metaData": fields}})
    assert _register(api, app, "req@example.com", code).json() == error(604, "invalid metadata")
    assert _register(api, app, "req@example.com", code, metaData="{x").json() == error(602, "invalid data")
    assert _register(api, app, "req@example.com", code, metaData='{"name": 5}').json() == error(602, "invalid data")
    assert _register(api, app, "req@example.com", code, metaData='{"name": "Ri"}').status_code == 200


def test_register_accepts_cosyncjwt_invite(api, new_app, database):
    """Invites from a CosyncJWT database store the code in clear and never expire there."""
    app = new_app()
    now = datetime.datetime.now(datetime.timezone.utc)
    database[db.INVITES].insert_one({
        "handle": "old@example.com", "appId": app["appId"], "senderHandle": "superuser", "senderUserId": "superuser",
        "code": 654321, "status": "pending", "metaData": {}, "createdAt": now, "updatedAt": now,
    })
    assert _register(api, app, "old@example.com", "654320").json() == error(602, "invalid data")
    assert _register(api, app, "old@example.com", "654321").status_code == 200


def test_invite_mails_per_user_are_limited(api, inviter):
    app, session = inviter()
    for number in range(20):
        assert _invite(api, session, f"bulk{number}@example.com").status_code == 200
    response = _invite(api, session, "bulk20@example.com")
    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert int(response.headers["Retry-After"]) > 0
