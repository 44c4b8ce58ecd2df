"""Operator routes that list, search, reset and delete apps."""

from __future__ import annotations

import uuid

from cosync import db
from cosync.templates import DEFAULT_TEMPLATES
from flows import audit_log, digest, error, register_user, sign_up
from admin_helpers import audit_records, operator  # noqa: F401 (fixture)

APP_NOT_FOUND = error(401, "app no longer exist")
INVALID_DATA = error(602, "invalid data")
UNKNOWN_APP_ID = "0123456789abcdef0123456789abcdef"


def _create(operator, name):
    response = operator.post("", {"name": name})
    assert response.status_code == 200, response.text
    return response.json()


def test_connection_returns_true(operator):
    response = operator.get("/connection")
    assert response.status_code == 200
    assert response.content == b"true"


def test_all_apps_lists_every_app_without_secrets(operator):
    first = _create(operator, f"All apps {uuid.uuid4().hex[:6]}")
    second = _create(operator, f"All apps {uuid.uuid4().hex[:6]}")

    response = operator.get("/allApps")

    assert response.status_code == 200
    listed = {app["appId"]: app for app in response.json()}
    assert first["appId"] in listed
    assert second["appId"] in listed
    assert listed[first["appId"]]["appToken"] == first["appToken"]
    assert listed[first["appId"]]["appPublicKey"] == first["appPublicKey"]
    for app in listed.values():
        for hidden in ("appPrivateKey", "appSecret", "_id", "TWILIOToken", "emailExtensionAPIKey"):
            assert hidden not in app
    names = [app["name"] for app in response.json()]
    assert names == sorted(names)


def test_search_matches_part_of_name_ignoring_case(operator):
    marker = uuid.uuid4().hex[:8]
    app = _create(operator, f"Searchable {marker} Shop")

    response = operator.get("/search", name=f"{marker} shop".upper())

    assert response.status_code == 200
    assert [found["appId"] for found in response.json()] == [app["appId"]]


def test_search_exact_needs_whole_name_and_case(operator):
    marker = uuid.uuid4().hex[:8]
    app = _create(operator, f"Exact {marker}")

    assert operator.get("/search", name=f"exact {marker}", case="true").json() == []
    assert operator.get("/search", name=marker, case="true").json() == []
    found = operator.get("/search", name=f"Exact {marker}", case="true").json()
    assert [item["appId"] for item in found] == [app["appId"]]


def test_search_treats_regex_characters_literally(operator):
    marker = uuid.uuid4().hex[:8]
    odd = _create(operator, f"{marker} (a+)+$ [x] .* \\d {{2}} ^|?")
    _create(operator, f"{marker} aaaa")

    for term in ("(a+)+$", "[x]", ".*", "\\d", "{2}", "^|?", f"{marker} (a+)+$ [x]"):
        response = operator.get("/search", name=term)
        assert response.status_code == 200, term
        assert [app["appId"] for app in response.json()] == [odd["appId"]], term
    unbalanced = operator.get("/search", name="(((")
    assert unbalanced.status_code == 200
    assert unbalanced.json() == []
    wildcard = operator.get("/search", name=".")
    assert all("." in app["name"] for app in wildcard.json())


def test_search_pages_newest_first(operator):
    marker = uuid.uuid4().hex[:8]
    created = [_create(operator, f"Paged {marker} {number}") for number in range(5)]
    newest_first = [app["appId"] for app in reversed(created)]

    first = operator.get("/search", name=marker, limit="2").json()
    second = operator.get("/search", name=marker, limit="2", offset="1").json()
    last = operator.get("/search", name=marker, limit="2", offset="2").json()

    assert [app["appId"] for app in first] == newest_first[:2]
    assert [app["appId"] for app in second] == newest_first[2:4]
    assert [app["appId"] for app in last] == newest_first[4:]


def test_search_rejects_bad_paging_and_terms(operator):
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"offset": "-1"}, {"name": "x" * 255}, {"name": "a\x01"}):
        response = operator.get("/search", **params)
        assert response.status_code == 400, params
        assert response.json() == INVALID_DATA, params


def test_delete_app_removes_app_and_its_data(operator, api, database):
    app = _create(operator, f"Doomed {uuid.uuid4().hex[:6]}")
    register_user(api, app, "doomed@example.com")
    sign_up(api, app, "pending.doomed@example.com")
    keeper = _create(operator, f"Keeper {uuid.uuid4().hex[:6]}")
    register_user(api, keeper, "keeper@example.com")

    response = operator.delete(f"/{app['appId']}")

    assert response.status_code == 200
    assert response.content == b"true"
    assert database[db.APPS].find_one({"appId": app["appId"]}) is None
    for name in (db.USERS, db.SIGNUPS, db.SIGNUP_CODES, db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES,
                 db.EMAIL_TEMPLATES):
        assert database[name].count_documents({"appId": app["appId"]}) == 0, name
    assert database[db.USERS].count_documents({"appId": keeper["appId"]}) == 1
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": keeper["appId"]}) == len(DEFAULT_TEMPLATES)
    login = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                     json={"handle": "doomed@example.com", "password": digest("correct horse")})
    assert login.json() == APP_NOT_FOUND


def test_delete_app_leaves_one_audit_record(operator, database):
    app = _create(operator, f"Audited delete {uuid.uuid4().hex[:6]}")
    operator.delete(f"/{app['appId']}")

    records = list(audit_log(database).find({"appId": app["appId"]}))
    assert [record["action"] for record in records] == ["deleteApp"]
    assert records[0]["logType"] == "app"
    assert records[0]["status"] == "success"


def test_delete_unknown_app_fails(operator):
    response = operator.delete(f"/{UNKNOWN_APP_ID}")
    assert response.status_code == 400
    assert response.json() == APP_NOT_FOUND


def test_reset_leaves_working_app(operator, api, database):
    app = _create(operator, f"Reset {uuid.uuid4().hex[:6]}")
    operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "userNamesEnabled", "userNamesEnabled": True})
    session = register_user(api, app, "before.reset@example.com")
    named = api.post("/api/appuser/setUserName", headers={"access-token": session["access-token"]}, json={"userName": "keeper"})
    assert named.status_code == 200, named.text
    assert database[db.USER_NAMES].count_documents({"appId": app["appId"]}) == 1
    sign_up(api, app, "pending.reset@example.com")
    assert operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["EN", "FR"]}).status_code == 200
    template = database[db.EMAIL_TEMPLATES].find_one({"appId": app["appId"], "templateName": "signUp", "locale": "EN"})
    operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": str(template["_id"]), "subject": "Edited"})

    response = operator.post("/reset", {"appId": app["appId"]})

    assert response.status_code == 200
    assert response.content == b"true"
    for name in (db.USERS, db.SIGNUPS, db.SIGNUP_CODES, db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES):
        assert database[name].count_documents({"appId": app["appId"]}) == 0, name
    templates = list(database[db.EMAIL_TEMPLATES].find({"appId": app["appId"]}))
    assert sorted((item["locale"], item["templateName"]) for item in templates) == sorted(
        (locale, name) for locale in ("EN", "FR") for name in DEFAULT_TEMPLATES
    )
    assert all(item["subject"] != "Edited" for item in templates)
    stored = database[db.APPS].find_one({"appId": app["appId"]})
    assert stored["appToken"] == app["appToken"]
    assert stored["locales"] == ["EN", "FR"]

    login_gone = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                          json={"handle": "before.reset@example.com", "password": digest("correct horse")})
    assert login_gone.json() == error(600, "invalid login credentials")
    session = register_user(api, app, "before.reset@example.com", "new password")
    assert "access-token" in session
    login = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                     json={"handle": "before.reset@example.com", "password": digest("new password")})
    assert login.status_code == 200
    assert "jwt" in login.json()
    renamed = api.post("/api/appuser/setUserName", headers={"access-token": login.json()["access-token"]},
                       json={"userName": "keeper"})
    assert renamed.status_code == 200, renamed.text


def test_reset_keeps_log_and_records_itself(operator, database):
    app = _create(operator, f"Reset log {uuid.uuid4().hex[:6]}")
    operator.post("/reset", {"appId": app["appId"]})

    assert [record["action"] for record in audit_records(database, app["appId"], "create")] == ["create"]
    reset = audit_records(database, app["appId"], "resetApp")
    assert len(reset) == 1
    assert reset[0]["status"] == "success"


def test_reset_errors(operator):
    missing = operator.post("/reset", {})
    assert missing.status_code == 400
    assert missing.json() == error(403, "missing parameter")
    unknown = operator.post("/reset", {"appId": UNKNOWN_APP_ID})
    assert unknown.status_code == 400
    assert unknown.json() == APP_NOT_FOUND
