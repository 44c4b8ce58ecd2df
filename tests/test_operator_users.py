"""Operator routes for users and sign-ups: search, add, remove, status and metadata."""

from __future__ import annotations

import json

import jwt
import pytest
from bson import ObjectId

from cosync import db
from flows import audit_log, digest, error, sign_up
from operator_helpers import PASSWORD, add_user, login, session

OTHER_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def operator(server_secret):
    return {"server-secret": server_secret}


def search(api, operator, path, **params):
    return api.get(path, headers=operator, params=params)


# --- credentials -------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/app/searchUser"),
    ("GET", "/api/app/searchSingUp"),
    ("POST", "/api/app/removeAppSignup"),
    ("POST", "/api/app/user"),
    ("POST", "/api/app/updateAppUserMetaData"),
    ("POST", "/api/app/addUser"),
    ("POST", "/api/app/removeUser"),
    ("GET", "/api/app/export"),
    ("POST", "/api/app/importDatabase"),
]


@pytest.mark.parametrize("method,path", ROUTES)
def test_route_rejects_callers_without_server_secret(api, new_app, server_secret, database, method, path):
    app = new_app()
    user = add_user(api, server_secret, app, "owner@example.com")
    access_token = session(api, app["appToken"], "owner@example.com")["access-token"]
    body = {
        "appId": app["appId"], "handle": "owner@example.com", "userId": user["_id"], "status": "suspend",
        "metaData": {"team": "x"}, "password": digest("another password"),
    }
    before = database[db.USERS].find_one({"_id": ObjectId(user["_id"])})

    attempts = {
        "no token": {},
        "forged server secret": {"server-secret": "not.a.token"},
        "app token as server secret": {"server-secret": app["appToken"]},
        "app token": {"app-token": app["appToken"]},
        "access token": {"access-token": access_token},
    }
    for name, headers in attempts.items():
        if method == "GET":
            response = api.get(path, headers=headers, params={"appId": app["appId"], "value": "owner"})
        else:
            response = api.post(path, headers=headers, json=body)
        # An invalid `server-secret` is 401; no server secret at all is 403, as in CosyncJWT.
        assert response.status_code == (401 if "server-secret" in headers else 403), (name, response.text)
        assert response.json() == error(400, "invalid admin token"), name

    assert database[db.USERS].find_one({"_id": ObjectId(user["_id"])}) == before
    assert database[db.APPS].count_documents({"appId": app["appId"]}) == 1


# --- searchUser ------------------------------------------------------------------------------------


def test_search_user_returns_page_without_secrets(api, new_app, server_secret, operator, database):
    app = new_app()
    for handle in ("carol@example.com", "alice@example.com", "bob@example.com"):
        add_user(api, server_secret, app, handle)
    database[db.USERS].update_one({"appId": app["appId"], "handle": "bob@example.com"}, {"$set": {"googleSecretKey": "SEED", "twoFactorCode": "123456"}})

    response = search(api, operator, "/api/app/searchUser", appId=app["appId"], value="example")

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    body = response.json()
    assert [user["handle"] for user in body] == ["alice@example.com", "bob@example.com", "carol@example.com"]
    bob = body[1]
    assert bob["status"] == "active"
    assert bob["appId"] == app["appId"]
    assert ObjectId.is_valid(bob["_id"])
    for hidden in ("password", "googleSecretKey", "twoFactorCode", "phoneCode", "tokenVersion", "__v"):
        assert hidden not in bob, hidden


def test_search_user_matches_metacharacters_literally(api, new_app, server_secret, operator):
    app = new_app()
    add_user(api, server_secret, app, "a.b@example.com")
    add_user(api, server_secret, app, "axb@example.com")
    add_user(api, server_secret, app, "star+(1)@example.com")

    def handles(value):
        response = search(api, operator, "/api/app/searchUser", appId=app["appId"], value=value)
        assert response.status_code == 200, (value, response.text)
        return [user["handle"] for user in response.json()]

    assert handles("a.b") == ["a.b@example.com"]
    assert handles(".*") == []
    assert handles("+(1)") == ["star+(1)@example.com"]
    assert handles("(") == ["star+(1)@example.com"]
    for pattern in ("[", "\\", "(a+)+$", "a{2,}", "^axb", "$", "|", "?", "#", " "):
        assert handles(pattern) == [], pattern


def test_search_user_ignores_case_and_finds_user_names(api, new_app, server_secret, operator, database):
    app = new_app()
    add_user(api, server_secret, app, "ada@example.com")
    add_user(api, server_secret, app, "grace@example.com")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "grace@example.com"}, {"$set": {"userName": "Hopper"}})

    by_handle = search(api, operator, "/api/app/searchUser", appId=app["appId"], value="ADA").json()
    by_user_name = search(api, operator, "/api/app/searchUser", appId=app["appId"], value="hopp").json()

    assert [user["handle"] for user in by_handle] == ["ada@example.com"]
    assert [user["handle"] for user in by_user_name] == ["grace@example.com"]


def test_search_user_hides_anonymous_users(api, new_app, server_secret, operator, database):
    app = new_app()
    add_user(api, server_secret, app, "named@example.com")
    database[db.USERS].insert_one({"appId": app["appId"], "handle": "ANON_4f1c", "status": "active"})

    everyone = search(api, operator, "/api/app/searchUser", appId=app["appId"]).json()
    named = search(api, operator, "/api/app/searchUser", appId=app["appId"], hideAnonUser="true")

    assert [user["handle"] for user in everyone] == ["ANON_4f1c", "named@example.com"]
    assert [user["handle"] for user in named.json()] == ["named@example.com"]
    assert named.headers["X-Total-Count"] == "1"


def test_search_user_pages_results(api, new_app, server_secret, operator):
    app = new_app()
    for index in range(5):
        add_user(api, server_secret, app, f"user{index}@example.com")

    second = search(api, operator, "/api/app/searchUser", appId=app["appId"], offset="1", limit="2")
    last = search(api, operator, "/api/app/searchUser", appId=app["appId"], offset="2", limit="2")
    beyond = search(api, operator, "/api/app/searchUser", appId=app["appId"], offset="9", limit="2")

    assert [user["handle"] for user in second.json()] == ["user2@example.com", "user3@example.com"]
    assert second.headers["X-Total-Count"] == "5"
    assert [user["handle"] for user in last.json()] == ["user4@example.com"]
    assert beyond.json() == []


def test_search_user_default_page_has_25_users(api, new_app, operator, database):
    app = new_app()
    database[db.USERS].insert_many([{"appId": app["appId"], "handle": f"u{index:02}@example.com"} for index in range(30)])

    response = search(api, operator, "/api/app/searchUser", appId=app["appId"])

    assert len(response.json()) == 25
    assert response.headers["X-Total-Count"] == "30"


def test_search_user_errors(api, new_app, operator):
    app = new_app()
    assert search(api, operator, "/api/app/searchUser").json() == error(403, "missing parameter")
    assert search(api, operator, "/api/app/searchUser", appId=OTHER_ID).json() == error(401, "app no longer exist")
    for params in ({"limit": "0"}, {"limit": "101"}, {"offset": "-1"}, {"limit": "ten"}, {"value": "a\x01b"}, {"value": "x" * 255}):
        response = search(api, operator, "/api/app/searchUser", appId=app["appId"], **params)
        assert response.status_code == 400, params
        assert response.json() == error(602, "invalid data"), params


def test_search_user_stays_in_named_app(api, new_app, server_secret, operator):
    first, second = new_app(), new_app()
    add_user(api, server_secret, first, "mine@example.com")
    add_user(api, server_secret, second, "theirs@example.com")

    response = search(api, operator, "/api/app/searchUser", appId=first["appId"], value="example")

    assert [user["handle"] for user in response.json()] == ["mine@example.com"]


# --- searchSingUp and removeAppSignup ------------------------------------------------------------


def test_search_signup_lists_pending_signups(api, new_app, operator):
    app = new_app()
    sign_up(api, app, "pending@example.com")
    sign_up(api, app, "p.nding@example.com")

    response = search(api, operator, "/api/app/searchSingUp", appId=app["appId"], value="p.n")

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    [signup] = response.json()
    assert signup["handle"] == "p.nding@example.com"
    assert signup["status"] == "pending"
    assert ObjectId.is_valid(signup["_id"])
    for hidden in ("password", "code", "codeHash", "expiresAt"):
        assert hidden not in signup, hidden


def test_search_signup_errors(api, new_app, operator):
    app = new_app()
    assert search(api, operator, "/api/app/searchSingUp", value="x").json() == error(403, "missing parameter")
    assert search(api, operator, "/api/app/searchSingUp", appId=OTHER_ID).json() == error(401, "app no longer exist")
    assert search(api, operator, "/api/app/searchSingUp", appId=app["appId"], limit="500").json() == error(602, "invalid data")


def test_remove_signup_deletes_record_and_codes(api, new_app, operator, database):
    app = new_app()
    code = sign_up(api, app, "leaving@example.com")
    signup = database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": "leaving@example.com"})

    response = api.post("/api/app/removeAppSignup", headers=operator, json={"appId": app["appId"], "_id": str(signup["_id"])})

    assert response.status_code == 200
    assert response.json()["handle"] == "leaving@example.com"
    assert "password" not in response.json()
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0
    assert database[db.SIGNUP_CODES].count_documents({"appId": app["appId"]}) == 0
    complete = api.post(
        "/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json={"handle": "leaving@example.com", "code": code}
    )
    assert complete.json() == error(602, "invalid data")


def test_remove_signup_by_handle(api, new_app, operator, database):
    app = new_app()
    sign_up(api, app, "byhandle@example.com")

    response = api.post("/api/app/removeAppSignup", headers=operator, json={"appId": app["appId"], "handle": "ByHandle@example.com"})

    assert response.status_code == 200
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_remove_signup_errors(api, new_app, operator):
    app = new_app()
    url = "/api/app/removeAppSignup"
    assert api.post(url, headers=operator, json={"_id": str(ObjectId())}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={"appId": app["appId"]}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={"appId": OTHER_ID, "_id": str(ObjectId())}).json() == error(401, "app no longer exist")
    assert api.post(url, headers=operator, json={"appId": app["appId"], "_id": "xyz"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={"appId": app["appId"], "_id": str(ObjectId())}).json() == error(603, "account does not exist")


def test_remove_signup_stays_in_named_app(api, new_app, operator, database):
    first, second = new_app(), new_app()
    sign_up(api, second, "other@example.com")
    signup = database[db.SIGNUPS].find_one({"appId": second["appId"]})

    response = api.post("/api/app/removeAppSignup", headers=operator, json={"appId": first["appId"], "_id": str(signup["_id"])})

    assert response.json() == error(603, "account does not exist")
    assert database[db.SIGNUPS].count_documents({"_id": signup["_id"]}) == 1


# --- user status -----------------------------------------------------------------------------------


def test_suspension_revokes_tokens_and_blocks_login(api, new_app, server_secret, operator):
    app = new_app()
    user = add_user(api, server_secret, app, "suspect@example.com")
    tokens = session(api, app["appToken"], "suspect@example.com")

    response = api.post("/api/app/user", headers=operator, json={"appId": app["appId"], "userId": user["_id"], "status": "suspend"})

    assert response.status_code == 200
    assert response.content == b"true"
    assert login(api, app["appToken"], "suspect@example.com").json() == error(404, "user account is suspended")
    revoked = api.get("/api/appuser/getUser", headers={"access-token": tokens["access-token"]})
    assert revoked.json() == error(405, "invalid access token")


def test_activation_allows_login_but_keeps_old_tokens_revoked(api, new_app, server_secret, operator):
    app = new_app()
    add_user(api, server_secret, app, "returning@example.com")
    old = session(api, app["appToken"], "returning@example.com")
    for status in ("suspend", "active"):
        body = {"appId": app["appId"], "handle": "returning@example.com", "status": status}
        assert api.post("/api/app/user", headers=operator, json=body).content == b"true"

    fresh = session(api, app["appToken"], "returning@example.com")

    assert api.get("/api/appuser/getUser", headers={"access-token": fresh["access-token"]}).status_code == 200
    assert api.get("/api/appuser/getUser", headers={"access-token": old["access-token"]}).json() == error(405, "invalid access token")


def test_user_status_finds_anonymous_user_by_handle(api, new_app, operator, database):
    app = new_app()
    database[db.USERS].insert_one({"appId": app["appId"], "handle": "ANON_7e2a", "status": "active"})

    body = {"appId": app["appId"], "handle": "ANON_7e2a", "status": "suspend"}
    response = api.post("/api/app/user", headers=operator, json=body)

    assert response.content == b"true"
    assert database[db.USERS].find_one({"appId": app["appId"]})["status"] == "suspend"


def test_user_status_errors(api, new_app, server_secret, operator, database):
    app = new_app()
    user = add_user(api, server_secret, app, "status@example.com")
    url = "/api/app/user"
    base = {"appId": app["appId"], "userId": user["_id"]}
    assert api.post(url, headers=operator, json=base).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={**base, "status": "banned"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={**base, "status": ["suspend"]}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={"appId": app["appId"], "status": "suspend"}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={**base, "status": "suspend", "userId": "12"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={**base, "status": "suspend", "userId": str(ObjectId())}).json() == error(603, "account does not exist")
    assert api.post(url, headers=operator, json={**base, "status": "suspend", "appId": OTHER_ID}).json() == error(401, "app no longer exist")
    assert database[db.USERS].find_one({"_id": ObjectId(user["_id"])})["status"] == "active"


def test_user_status_stays_in_named_app(api, new_app, server_secret, operator, database):
    first, second = new_app(), new_app()
    victim = add_user(api, server_secret, second, "victim@example.com")

    response = api.post("/api/app/user", headers=operator, json={"appId": first["appId"], "userId": victim["_id"], "status": "suspend"})

    assert response.json() == error(603, "account does not exist")
    stored = database[db.USERS].find_one({"_id": ObjectId(victim["_id"])})
    assert stored["status"] == "active"
    assert stored["tokenVersion"] == 0
    assert login(api, second["appToken"], "victim@example.com").status_code == 200


# --- updateAppUserMetaData -----------------------------------------------------------------------


def test_update_metadata_replaces_and_reaches_jwt(api, new_app, server_secret, operator, database):
    app = new_app(metaData=[{"fieldName": "team", "path": "user_data.team", "required": True}])
    add_user(api, server_secret, app, "meta@example.com", metaData=json.dumps({"user_data": {"team": "red"}}))
    body = {
        "appId": app["appId"],
        "handle": "meta@example.com",
        "metaData": {"user_data": {"team": "  blue  "}, "plan": "pro"},
        "addedMetadata": [{"path": "user_data.level", "value": " 3 "}],
    }

    response = api.post("/api/app/updateAppUserMetaData", headers=operator, json=body)

    assert response.status_code == 200
    assert response.content == b"true"
    stored = database[db.USERS].find_one({"appId": app["appId"], "handle": "meta@example.com"})
    assert stored["metaData"] == {"user_data": {"team": "blue", "level": "3"}, "plan": "pro"}
    claims = jwt.decode(session(api, app["appToken"], "meta@example.com")["jwt"], options={"verify_signature": False})
    assert claims["user_data"] == {"team": "blue", "level": "3"}
    assert claims["plan"] == "pro"


def test_update_metadata_accepts_json_text(api, new_app, server_secret, operator, database):
    app = new_app()
    add_user(api, server_secret, app, "text@example.com")
    body = {"appId": app["appId"], "handle": "text@example.com", "metaData": json.dumps({"a": {"b": 1}})}

    assert api.post("/api/app/updateAppUserMetaData", headers=operator, json=body).content == b"true"
    assert database[db.USERS].find_one({"appId": app["appId"]})["metaData"] == {"a": {"b": 1}}


def test_update_metadata_rejects_invalid_metadata(api, new_app, server_secret, operator, database):
    app = new_app(metaData=[{"fieldName": "team", "path": "team", "required": True}])
    add_user(api, server_secret, app, "strict@example.com", metaData=json.dumps({"team": "red"}))
    url = "/api/app/updateAppUserMetaData"
    base = {"appId": app["appId"], "handle": "strict@example.com"}
    deep: dict = {"team": "red"}
    level = deep
    for _ in range(9):
        level["n"] = {}
        level = level["n"]
    cases = [
        "[1, 2]",
        "{not json",
        ["list"],
        {"team": "red", "sub": "someone-else"},
        {"team": "red", "exp": 4102444800},
        {"team": "red", "email": "boss@example.com"},
        {"team": "red", "$set": "x"},
        {"team": "red", "a.b": "x"},
        {"team": "red", "big": "x" * 17000},
        deep,
        {"other": "field"},
        {"team": "   "},
    ]
    for metadata in cases:
        response = api.post(url, headers=operator, json={**base, "metaData": metadata})
        assert response.status_code == 400, metadata
        assert response.json() == error(604, "invalid metadata"), metadata
    for added in ([{"path": "x"}], [{"path": "", "value": "v"}], "nope", [{"path": "x", "value": 5}]):
        response = api.post(url, headers=operator, json={**base, "metaData": {"team": "red"}, "addedMetadata": added})
        assert response.json() == error(604, "invalid metadata"), added
    assert database[db.USERS].find_one({"appId": app["appId"]})["metaData"] == {"team": "red"}


def test_update_metadata_errors(api, new_app, server_secret, operator):
    first, second = new_app(), new_app()
    add_user(api, server_secret, second, "elsewhere@example.com")
    url = "/api/app/updateAppUserMetaData"
    assert api.post(url, headers=operator, json={"appId": first["appId"], "handle": "elsewhere@example.com"}).json() == error(603, "account does not exist")
    assert api.post(url, headers=operator, json={"handle": "x@example.com", "metaData": {}}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={"appId": OTHER_ID, "handle": "x@example.com", "metaData": {}}).json() == error(401, "app no longer exist")
    missing_metadata = api.post(url, headers=operator, json={"appId": second["appId"], "handle": "elsewhere@example.com"})
    assert missing_metadata.json() == error(403, "missing parameter")


def test_update_metadata_stays_in_named_app(api, new_app, server_secret, operator, database):
    first, second = new_app(), new_app()
    add_user(api, server_secret, first, "same@example.com")
    target = add_user(api, server_secret, second, "same@example.com")

    body = {"appId": first["appId"], "userId": target["_id"], "metaData": {"role": "admin"}}
    response = api.post("/api/app/updateAppUserMetaData", headers=operator, json=body)

    assert response.json() == error(603, "account does not exist")
    assert database[db.USERS].find_one({"_id": ObjectId(target["_id"])})["metaData"] == {}


# --- addUser and removeUser ----------------------------------------------------------------------


def test_add_user_creates_active_user(api, new_app, server_secret, operator, database):
    app = new_app()

    response = api.post(
        "/api/app/addUser",
        headers=operator,
        json={"appId": app["appId"], "handle": " New.User@Example.com ", "password": digest(PASSWORD)},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["handle"] == "new.user@example.com"
    assert body["status"] == "active"
    assert body["appId"] == app["appId"]
    assert body["locale"] == "EN"
    assert ObjectId.is_valid(body["_id"])
    assert "password" not in body
    assert "lastLogin" not in body
    assert login(api, app["appToken"], "new.user@example.com").status_code == 200
    signup = database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": "new.user@example.com"})
    assert signup["status"] == "active"


def test_add_user_completes_pending_signup(api, new_app, server_secret, operator, database):
    app = new_app()
    code = sign_up(api, app, "halfway@example.com", password="first password")

    add_user(api, server_secret, app, "halfway@example.com")

    assert database[db.SIGNUP_CODES].count_documents({"appId": app["appId"]}) == 0
    stale = api.post(
        "/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json={"handle": "halfway@example.com", "code": code}
    )
    assert stale.json() == error(602, "invalid data")
    assert login(api, app["appToken"], "halfway@example.com").status_code == 200
    assert login(api, app["appToken"], "halfway@example.com", "first password").json() == error(600, "invalid login credentials")


def test_add_user_errors(api, new_app, server_secret, operator, database):
    app = new_app(metaData=[{"fieldName": "team", "path": "team", "required": True}])
    url = "/api/app/addUser"
    base = {"appId": app["appId"], "handle": "new@example.com", "password": digest(PASSWORD), "metaData": json.dumps({"team": "red"})}
    assert api.post(url, headers=operator, json={**base, "handle": ""}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={**base, "password": None}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={**base, "appId": None}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={**base, "appId": OTHER_ID}).json() == error(401, "app no longer exist")
    assert api.post(url, headers=operator, json={**base, "handle": "not-an-address"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={**base, "password": "plain text"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={**base, "locale": "XX"}).json() == error(602, "invalid data")
    assert api.post(url, headers=operator, json={**base, "metaData": "{}"}).json() == error(604, "invalid metadata")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0

    assert api.post(url, headers=operator, json=base).status_code == 200
    duplicate = api.post(url, headers=operator, json={**base, "handle": "NEW@example.com"})
    assert duplicate.json() == error(601, "handle already registered")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 1


def test_remove_user_deletes_every_record_of_the_handle(api, new_app, server_secret, operator, database):
    app, other = new_app(), new_app()
    user = add_user(api, server_secret, app, "gone@example.com")
    add_user(api, server_secret, other, "gone@example.com")
    tokens = session(api, app["appToken"], "gone@example.com")
    for name in (db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES):
        database[name].insert_many([{"appId": app["appId"], "handle": "gone@example.com"} for _ in range(2)])
        database[name].insert_one({"appId": other["appId"], "handle": "gone@example.com"})

    response = api.post("/api/app/removeUser", headers=operator, json={"appId": app["appId"], "handle": "gone@example.com"})

    assert response.status_code == 200
    assert response.json()["_id"] == user["_id"]
    assert "password" not in response.json()
    for name in (db.USERS, db.SIGNUPS, db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES):
        assert database[name].count_documents({"appId": app["appId"], "handle": "gone@example.com"}) == 0, name
        assert database[name].count_documents({"appId": other["appId"], "handle": "gone@example.com"}) == 1, name
    assert api.get("/api/appuser/getUser", headers={"access-token": tokens["access-token"]}).status_code == 400
    assert login(api, app["appToken"], "gone@example.com").json() == error(600, "invalid login credentials")


def test_remove_user_errors(api, new_app, server_secret, operator):
    first, second = new_app(), new_app()
    user = add_user(api, server_secret, second, "keep@example.com")
    url = "/api/app/removeUser"
    assert api.post(url, headers=operator, json={"handle": "keep@example.com"}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={"appId": first["appId"]}).json() == error(403, "missing parameter")
    assert api.post(url, headers=operator, json={"appId": OTHER_ID, "handle": "keep@example.com"}).json() == error(401, "app no longer exist")
    assert api.post(url, headers=operator, json={"appId": first["appId"], "handle": "keep@example.com"}).json() == error(603, "account does not exist")
    assert api.post(url, headers=operator, json={"appId": first["appId"], "userId": user["_id"]}).json() == error(603, "account does not exist")
    assert login(api, second["appToken"], "keep@example.com").status_code == 200


def test_operator_actions_are_audited_without_secrets(api, new_app, server_secret, operator, database):
    app = new_app()
    add_user(api, server_secret, app, "audited@example.com")
    api.post("/api/app/user", headers=operator, json={"appId": app["appId"], "handle": "audited@example.com", "status": "suspend"})
    api.post("/api/app/removeUser", headers=operator, json={"appId": app["appId"], "handle": "audited@example.com"})

    query = {"appId": app["appId"], "logType": "app", "action": {"$ne": "create"}}
    records = list(audit_log(database).find(query).sort("createdAt", 1))

    assert [record["action"] for record in records] == ["addUser", "updateAppUser", "removeUser"]
    assert all(record["handle"] == "audited@example.com" for record in records)
    assert json.loads(records[1]["value"])["userStatus"] == "suspend"
    assert digest(PASSWORD) not in str(records)
    assert "argon2" not in str(records)


def test_failed_operator_change_is_audited(api, new_app, operator, database):
    app = new_app()

    api.post("/api/app/user", headers=operator, json={"appId": app["appId"], "handle": "nobody@example.com", "status": "suspend"})
    api.post("/api/app/user", headers=operator, json={"appId": OTHER_ID, "handle": "nobody@example.com", "status": "suspend"})

    [record] = audit_log(database).find({"appId": {"$in": [app["appId"], OTHER_ID]}, "action": "updateAppUser"})
    assert record["appId"] == app["appId"]
    assert record["status"] == "error"
    assert record["handle"] == "nobody@example.com"
    assert json.loads(record["value"])["code"] == 603
