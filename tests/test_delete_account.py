"""POST /api/appuser/deleteAccount."""

from __future__ import annotations

import datetime
import time

import pytest

from cosync import db
from cosync.settings import get_settings
from flows import audit_log, digest, error, register_user, sign_up
from idp_fake import APPLE_AUDIENCE, GOOGLE_AUDIENCE, running_fake_idp
from password_flows import forgot, login, quick_forgot_password  # noqa: F401


def _delete(api, access_token, **body):
    return api.post("/api/appuser/deleteAccount", headers={"access-token": access_token}, json=body)


def _count(database, collection, app, **query):
    return database[collection].count_documents({"appId": app["appId"], **query})


@pytest.mark.usefixtures("quick_forgot_password")
def test_delete_account_removes_user_and_records(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "bye@example.com", "pw")
    forgot(api, app, "bye@example.com")
    now = datetime.datetime.now(datetime.timezone.utc)
    database[db.INVITES].insert_many([
        {"appId": app["appId"], "handle": "friend@example.com", "senderHandle": "bye@example.com", "status": "pending",
         "createdAt": now},
        {"appId": app["appId"], "handle": "bye@example.com", "senderHandle": "x@example.com", "status": "verified",
         "createdAt": now},
    ])
    database[db.USER_NAMES].insert_one({"_id": f"{app['appId']}:bye", "appId": app["appId"], "handle": "bye@example.com"})
    database[db.SMS_CODES].insert_one({"_id": f"login:{app['appId']}:bye", "appId": app["appId"], "handle": "bye@example.com"})
    register_user(api, app, "stays@example.com", "pw")

    response = _delete(api, session["access-token"], handle="Bye@Example.com", password=digest("pw"))

    assert response.status_code == 200
    assert response.content == b"true"
    for collection in (db.USERS, db.SIGNUPS, db.SIGNUP_CODES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES):
        assert _count(database, collection, app, handle="bye@example.com") == 0, collection
    assert _count(database, db.INVITES, app) == 0
    assert _count(database, db.USERS, app, handle="stays@example.com") == 1
    record = audit_log(database).find_one({"appId": app["appId"], "action": "deleteAccount"})
    assert record["status"] == "success"


def test_deleted_account_tokens_stop_working(api, new_app):
    """W7: access tokens of a deleted account stay dead, also once the handle signs up again."""
    app = new_app()
    session = register_user(api, app, "again@example.com", "pw")
    assert _delete(api, session["access-token"], handle="again@example.com", password=digest("pw")).content == b"true"

    gone = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert gone.json() == error(602, "invalid data")
    assert login(api, app, "again@example.com", "pw").json() == error(600, "invalid login credentials")

    # Tokens carry whole seconds, so wait for the next one before the new account is created.
    issued = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    while int(datetime.datetime.now(datetime.timezone.utc).timestamp()) == issued:
        time.sleep(0.05)
    new_session = register_user(api, app, "again@example.com", "pw")

    stale = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert stale.json() == error(405, "invalid access token")
    current = api.get("/api/appuser/getUser", headers={"access-token": new_session["access-token"]})
    assert current.status_code == 200


def test_delete_account_wrong_password(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "keep@example.com", "pw")

    response = _delete(api, session["access-token"], handle="keep@example.com", password=digest("guess"))

    assert response.status_code == 400
    assert response.json() == error(600, "invalid login credentials")
    assert _count(database, db.USERS, app, handle="keep@example.com") == 1


def test_delete_account_of_another_user_is_refused(api, new_app, database):
    """W23: the credentials must belong to the caller's own account."""
    app = new_app()
    attacker = register_user(api, app, "attacker@example.com", "pw")
    register_user(api, app, "victim@example.com", "victim pw")

    response = _delete(api, attacker["access-token"], handle="victim@example.com", password=digest("victim pw"))

    assert response.json() == error(600, "invalid login credentials")
    assert _count(database, db.USERS, app, handle="victim@example.com") == 1
    assert _count(database, db.USERS, app, handle="attacker@example.com") == 1


def test_delete_account_by_user_name(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "named@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "named@example.com"}, {"$set": {"userName": "ada"}})

    assert _delete(api, session["access-token"], handle="ada", password=digest("pw")).json() == error(
        606, "app does not support username login"
    )
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"userNamesEnabled": True}})
    assert _delete(api, session["access-token"], handle="Ada", password=digest("pw")).content == b"true"
    assert _count(database, db.USERS, app) == 0


def test_delete_account_bad_fields(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "fields@example.com", "pw")
    token = session["access-token"]

    assert _delete(api, token).json() == error(403, "missing parameter")
    assert _delete(api, token, handle="", password="").json() == error(403, "missing parameter")
    assert _delete(api, token, handle="fields@example.com").json() == error(602, "invalid data")
    assert _delete(api, token, password=digest("pw")).json() == error(602, "invalid data")
    assert _delete(api, token, handle=["fields@example.com"], password=digest("pw")).json() == error(602, "invalid data")
    assert _count(database, db.USERS, app) == 1


def test_delete_account_needs_access_token(api, new_app, database):
    app = new_app()
    register_user(api, app, "token@example.com", "pw")
    body = {"handle": "token@example.com", "password": digest("pw")}

    assert api.post("/api/appuser/deleteAccount", json=body).json() == error(403, "missing parameter")
    with_app_token = api.post("/api/appuser/deleteAccount", headers={"app-token": app["appToken"]}, json=body)
    assert with_app_token.json() == error(403, "missing parameter")
    forged = api.post("/api/appuser/deleteAccount", headers={"access-token": "x.y.z"}, json=body)
    assert forged.json() == error(405, "invalid access token")
    assert _count(database, db.USERS, app) == 1


@pytest.mark.parametrize(
    "status, expected",
    [("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))],
)
def test_delete_account_blocked_app(api, new_app, database, status, expected):
    """W13: a suspended or migrated app blocks account deletion too."""
    app = new_app()
    session = register_user(api, app, "blocked@example.com", "pw")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": status}})

    response = _delete(api, session["access-token"], handle="blocked@example.com", password=digest("pw"))

    assert response.json() == expected
    assert _count(database, db.USERS, app) == 1


def test_delete_account_suspended_user(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "sus@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "sus@example.com"}, {"$set": {"status": "suspend"}})

    response = _delete(api, session["access-token"], handle="sus@example.com", password=digest("pw"))

    assert response.json() == error(404, "user account is suspended")
    assert _count(database, db.USERS, app) == 1


@pytest.fixture(scope="module")
def idp():
    with running_fake_idp() as fake:
        yield fake


@pytest.fixture
def social_app(new_app, idp, monkeypatch):
    """An app with Apple and Google sign-in, whose key sets come from the local fake."""
    monkeypatch.setenv("APPLE_KEYS_URL", idp.keys_url("apple"))
    monkeypatch.setenv("GOOGLE_KEYS_URL", idp.keys_url("google"))
    get_settings.cache_clear()
    return new_app(
        appleLoginEnabled=True, appleBundleId=APPLE_AUDIENCE, googleLoginEnabled=True, googleClientId=GOOGLE_AUDIENCE
    )


def _social_signup(api, app, idp, provider, handle):
    body = {"token": idp.id_token(provider, handle), "provider": provider, "handle": handle}
    response = api.post("/api/appuser/socialSignup", headers={"app-token": app["appToken"]}, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("provider", ["apple", "google"])
def test_delete_social_account_with_own_token(api, social_app, idp, database, provider):
    """W23: Apple and Google accounts are deleted with an ID token of their own identity."""
    session = _social_signup(api, social_app, idp, provider, "social@example.com")

    response = _delete(api, session["access-token"], token=idp.id_token(provider, "social@example.com"))

    assert response.status_code == 200
    assert response.content == b"true"
    assert _count(database, db.USERS, social_app) == 0
    assert _count(database, db.SIGNUPS, social_app) == 0


def test_delete_social_account_with_other_identity(api, social_app, idp, database):
    """W23: a valid ID token of another identity deletes nothing, not even that identity's account."""
    session = _social_signup(api, social_app, idp, "apple", "caller@example.com")
    _social_signup(api, social_app, idp, "apple", "other@example.com")

    response = _delete(api, session["access-token"], token=idp.id_token("apple", "other@example.com"))

    assert response.json() == error(613, "token is invalid")
    assert _count(database, db.USERS, social_app) == 2


def test_delete_social_account_with_forged_token(api, social_app, idp, database):
    """W3: an HS256 token keyed with the provider's public key is rejected."""
    session = _social_signup(api, social_app, idp, "apple", "forged@example.com")

    response = _delete(api, session["access-token"], token=idp.hmac_token_with_public_key("apple", "forged@example.com"))

    assert response.json() == error(613, "token is invalid")
    assert _count(database, db.USERS, social_app) == 1


def test_delete_password_account_with_token(api, social_app, idp, database):
    """An ID token never deletes an account that signs in with a password."""
    session = register_user(api, social_app, "password@example.com", "pw")

    response = _delete(api, session["access-token"], token=idp.id_token("apple", "password@example.com"))

    assert response.json() == error(602, "invalid data")
    assert _count(database, db.USERS, social_app) == 1


def test_delete_account_swift_form_body(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "ada+del@example.com", "pw")
    response = api.post(
        "/api/appuser/deleteAccount",
        headers={"access-token": session["access-token"]},
        data=f"handle=ada%2Bdel@example.com&password={digest('pw')}",
    )
    assert response.content == b"true"
    assert _count(database, db.USERS, app) == 0


def test_delete_account_revoked_token(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "rev@example.com", "pw")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "rev@example.com"}, {"$inc": {"tokenVersion": 1}})

    response = _delete(api, session["access-token"], handle="rev@example.com", password=digest("pw"))

    assert response.json() == error(405, "invalid access token")
    assert _count(database, db.USERS, app) == 1


def test_delete_pending_signup_handle_is_untouched(api, new_app, database):
    """Deleting one account leaves other handles' pending sign-ups alone."""
    app = new_app()
    session = register_user(api, app, "mine@example.com", "pw")
    sign_up(api, app, "pending@example.com")

    assert _delete(api, session["access-token"], handle="mine@example.com", password=digest("pw")).content == b"true"

    assert _count(database, db.SIGNUP_CODES, app, handle="pending@example.com") == 1
    assert _count(database, db.SIGNUPS, app, handle="pending@example.com") == 1
