"""POST /api/appuser/changePassword."""

from __future__ import annotations

import pytest

from cosync import db
from flows import digest, error, register_user
from password_flows import login


def _change(api, token, **body):
    return api.post("/api/appuser/changePassword", headers={"access-token": token}, json=body)


def _password_hash(database, app, handle):
    return database[db.USERS].find_one({"appId": app["appId"], "handle": handle})["password"]


def test_change_password_replaces_it_and_revokes_tokens(api, new_app):
    """W7: a password change revokes every access token issued before it."""
    app = new_app()
    session = register_user(api, app, "change@example.com", "old password")
    other_session = login(api, app, "change@example.com", "old password").json()

    response = _change(api, session["access-token"], password=digest("old password"), newPassword=digest("new one"))

    assert response.status_code == 200
    assert response.content == b"true"
    assert login(api, app, "change@example.com", "old password").json() == error(600, "invalid login credentials")
    fresh = login(api, app, "change@example.com", "new one")
    assert fresh.status_code == 200
    for token in (session["access-token"], other_session["access-token"]):
        stale = api.get("/api/appuser/getUser", headers={"access-token": token})
        assert stale.json() == error(405, "invalid access token")
    current = api.get("/api/appuser/getUser", headers={"access-token": fresh.json()["access-token"]})
    assert current.status_code == 200


def test_change_password_wrong_current_password(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "wrong@example.com", "old password")
    before = _password_hash(database, app, "wrong@example.com")

    response = _change(api, session["access-token"], password=digest("guess"), newPassword=digest("new one"))

    assert response.status_code == 400
    assert response.json() == error(602, "invalid data")
    assert _password_hash(database, app, "wrong@example.com") == before


def test_change_password_bad_fields(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "fields@example.com", "old password")
    token = session["access-token"]
    old, new = digest("old password"), digest("new one")
    before = _password_hash(database, app, "fields@example.com")

    cases = [
        {"newPassword": new},
        {"password": old},
        {"password": old, "newPassword": "short"},
        {"password": old, "newPassword": "x" * 32},
        {"password": old, "newPassword": old},
        {"password": old.upper(), "newPassword": old},
        {"password": 5, "newPassword": new},
        {"password": old, "newPassword": [new]},
    ]
    for body in cases:
        assert _change(api, token, **body).json() == error(602, "invalid data"), body
    assert _password_hash(database, app, "fields@example.com") == before


def test_change_password_needs_user_token(api, new_app):
    """Without an access token naming a user the route returns 602, as in CosyncJWT. Kotlin sends the
    app token in `access-token`, which therefore cannot change a password."""
    app = new_app()
    body = {"password": digest("old"), "newPassword": digest("new")}
    kotlin = api.post("/api/appuser/changePassword", headers={"access-token": app["appToken"]}, json=body)
    assert kotlin.json() == error(602, "invalid data")
    assert api.post("/api/appuser/changePassword", json=body).json() == error(602, "invalid data")
    forged = api.post("/api/appuser/changePassword", headers={"access-token": "x.y.z"}, json=body)
    assert forged.json() == error(405, "invalid access token")


def test_change_password_revoked_token(api, new_app):
    app = new_app()
    session = register_user(api, app, "revoked@example.com", "old password")
    assert _change(api, session["access-token"], password=digest("old password"), newPassword=digest("b")).content == b"true"

    again = _change(api, session["access-token"], password=digest("b"), newPassword=digest("c"))

    assert again.json() == error(405, "invalid access token")
    assert login(api, app, "revoked@example.com", "b").status_code == 200


def test_change_password_swift_form_body(api, new_app):
    app = new_app()
    session = register_user(api, app, "swift@example.com", "old password")
    response = api.post(
        "/api/appuser/changePassword",
        headers={"access-token": session["access-token"]},
        data=f"newPassword={digest('new one')}&password={digest('old password')}",
    )
    assert response.content == b"true"
    assert login(api, app, "swift@example.com", "new one").status_code == 200


@pytest.mark.parametrize(
    "status, expected",
    [("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))],
)
def test_change_password_blocked_app(api, new_app, database, status, expected):
    app = new_app()
    session = register_user(api, app, "app@example.com", "old password")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": status}})

    response = _change(api, session["access-token"], password=digest("old password"), newPassword=digest("new"))

    assert response.json() == expected


def test_change_password_suspended_user(api, new_app, database):
    app = new_app()
    session = register_user(api, app, "sus@example.com", "old password")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "sus@example.com"}, {"$set": {"status": "suspend"}})
    before = _password_hash(database, app, "sus@example.com")

    response = _change(api, session["access-token"], password=digest("old password"), newPassword=digest("new"))

    assert response.json() == error(404, "user account is suspended")
    assert _password_hash(database, app, "sus@example.com") == before


def test_change_password_guesses_count_against_login_limit(api, new_app, database):
    """W8: a stolen access token allows no more password guesses than the login route."""
    app = new_app()
    session = register_user(api, app, "limit@example.com", "old password")
    for _ in range(10):
        wrong = _change(api, session["access-token"], password=digest("guess"), newPassword=digest("new"))
        assert wrong.json() == error(602, "invalid data")

    response = _change(api, session["access-token"], password=digest("old password"), newPassword=digest("new"))

    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert int(response.headers["Retry-After"]) > 0
    assert login(api, app, "limit@example.com", "old password").status_code == 429
