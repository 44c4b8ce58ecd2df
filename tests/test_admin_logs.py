"""GET /api/app/logs and /api/app/stat, and the retention of audit records."""

from __future__ import annotations

import datetime
import logging

import pytest

from cosync import db
from cosync.dates import utc_now
from cosync.routes.maintenance import purge_expired_records
from flows import audit_log, digest, error, register_user, sign_up
from admin_helpers import operator  # noqa: F401 (fixture)

INVALID_DATA = error(602, "invalid data")
MISSING_PARAM = error(403, "missing parameter")
APP_NOT_FOUND = error(401, "app no longer exist")
UNKNOWN_APP_ID = "0123456789abcdef0123456789abcdef"
START = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def app(new_app):
    return new_app()


@pytest.fixture
def logged_app(app, database):
    """An app whose log contains exactly 30 records, one an hour from START: actions a, b, c in turn,
    every third one an error, the first 10 operator records and the rest user records."""
    audit_log(database).delete_many({"appId": app["appId"]})
    audit_log(database).insert_many([
        {
            "appId": app["appId"], "action": "abc"[index % 3], "status": "error" if index % 3 == 2 else "success",
            "logType": "app" if index < 10 else "user", "value": f'{{"n":{index}}}',
            "createdAt": START + datetime.timedelta(hours=index),
        }
        for index in range(30)
    ])
    return app


def _values(body):
    return [int(record["value"].split(":")[1].rstrip("}")) for record in body["logs"]]


def test_logs_page_newest_first(operator, logged_app):
    first = operator.get("/logs", appId=logged_app["appId"]).json()
    second = operator.get("/logs", appId=logged_app["appId"], offset="1").json()
    small = operator.get("/logs", appId=logged_app["appId"], offset="2", limit="4").json()

    assert first["totalLog"] == 30
    assert _values(first) == list(range(29, 4, -1))
    assert _values(second) == [4, 3, 2, 1, 0]
    assert _values(small) == [21, 20, 19, 18]
    record = first["logs"][0]
    assert set(record) == {"_id", "appId", "action", "status", "logType", "value", "createdAt"}
    assert record["createdAt"] == "2026-03-02T17:00:00.000Z"


def test_logs_filter_by_action_status_and_type(operator, logged_app):
    app_id = logged_app["appId"]
    by_action = operator.get("/logs", appId=app_id, filterAction="a,c", limit="100").json()
    errors = operator.get("/logs", appId=app_id, status="error", limit="100").json()
    operator_records = operator.get("/logs", appId=app_id, type="app", status="success", filterAction="b").json()
    everything = operator.get("/logs", appId=app_id, type="all", status="all", filterAction="all").json()

    assert by_action["totalLog"] == 20
    assert {record["action"] for record in by_action["logs"]} == {"a", "c"}
    assert errors["totalLog"] == 10
    assert {record["status"] for record in errors["logs"]} == {"error"}
    assert _values(operator_records) == [7, 4, 1]
    assert everything["totalLog"] == 30


def test_logs_filter_by_time_uses_both_ends(operator, logged_app):
    app_id = logged_app["appId"]
    between = operator.get("/logs", appId=app_id, fromDate="2026-03-01T15:00:00Z", toDate="2026-03-01T18:00:00Z").json()
    since = operator.get("/logs", appId=app_id, fromDate="2026-03-02T15:00:00+00:00").json()
    before = operator.get("/logs", appId=app_id, toDate="2026-03-01T14:00:00").json()

    assert _values(between) == [5, 4, 3]
    assert _values(since) == [29, 28, 27]
    assert _values(before) == [1, 0]


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "1000"}, {"offset": "-1"}, {"status": "failed"}, {"type": "robot"},
    {"fromDate": "yesterday"}, {"toDate": "2026-13-01"}, {"filterAction": "a;drop"}, {"filterAction": "x" * 65},
])
def test_logs_rejects_bad_filters(operator, logged_app, params):
    response = operator.get("/logs", appId=logged_app["appId"], **params)
    assert response.status_code == 400
    assert response.json() == INVALID_DATA


def test_logs_errors(operator):
    missing = operator.get("/logs")
    assert missing.status_code == 400
    assert missing.json() == MISSING_PARAM
    unknown = operator.get("/logs", appId=UNKNOWN_APP_ID)
    assert unknown.status_code == 400
    assert unknown.json() == APP_NOT_FOUND


def test_logs_show_operator_and_user_actions(operator, app, api):
    operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "signup", "signupEnabled": True})
    register_user(api, app, "logged@example.com")

    body = operator.get("/logs", appId=app["appId"], limit="100").json()

    actions = [(record["logType"], record["action"], record["status"]) for record in body["logs"]]
    assert ("app", "create", "success") in actions
    assert ("app", "updateAppSetting", "success") in actions
    assert ("user", "signup", "success") in actions
    assert ("user", "completeSignup", "success") in actions


def test_stat_counts_users_signups_invites(operator, app, api, database):
    register_user(api, app, "one@example.com")
    register_user(api, app, "two@example.com")
    sign_up(api, app, "pending@example.com")
    database[db.USERS].insert_one({"appId": app["appId"], "handle": "ANON_1234", "status": "active", "createdAt": utc_now()})
    database[db.INVITES].insert_many([
        {"appId": app["appId"], "handle": "invited@example.com", "status": "pending", "code": "secret", "createdAt": utc_now()},
        {"appId": app["appId"], "handle": "joined@example.com", "status": "verified", "createdAt": utc_now()},
    ])

    body = operator.get("/stat", appId=app["appId"]).json()

    assert body["totalUser"] == 3
    assert body["totalAnonUser"] == 1
    assert body["totalSignup"] == 3
    assert body["pendingSignups"] == 1
    assert body["totalInvite"] == 2
    assert body["pendingInvites"] == 1
    assert [user["handle"] for user in body["users"]] == ["ANON_1234", "two@example.com", "one@example.com"]
    for user in body["users"]:
        assert "password" not in user
        assert "tokenVersion" not in user
    assert all("password" not in signup and "code" not in signup for signup in body["signups"])
    assert all("code" not in invite for invite in body["invites"])
    hidden = operator.get("/stat", appId=app["appId"], hideAnonUser="true", target="users").json()
    assert set(hidden) == {"users", "totalUser", "totalAnonUser"}
    assert hidden["totalUser"] == 2
    assert hidden["totalAnonUser"] == 1
    assert [user["handle"] for user in hidden["users"]] == ["two@example.com", "one@example.com"]


def test_stat_counts_logins_per_day(operator, app, api, database):
    register_user(api, app, "daily@example.com")
    for _ in range(2):
        login = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                         json={"handle": "daily@example.com", "password": digest("correct horse")})
        assert login.status_code == 200
    failed = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                      json={"handle": "daily@example.com", "password": digest("wrong")})
    assert failed.status_code == 400
    two_days_ago = utc_now() - datetime.timedelta(days=2)
    audit_log(database).insert_many([
        {"appId": app["appId"], "action": "login", "status": "success", "logType": "user", "value": "", "createdAt": two_days_ago},
        {"appId": app["appId"], "action": "login", "status": "success", "logType": "user",
         "value": '{"handle":"daily@example.com","secondFactor":"google"}', "createdAt": two_days_ago},
        {"appId": app["appId"], "action": "loginComplete", "status": "success", "logType": "user",
         "value": '{"handle":"daily@example.com","secondFactor":"google"}', "createdAt": two_days_ago},
        {"appId": app["appId"], "action": "socialLogin", "status": "success", "logType": "user", "value": "",
         "createdAt": two_days_ago},
        {"appId": app["appId"], "action": "loginAnonymous", "status": "error", "logType": "user", "value": "",
         "createdAt": two_days_ago},
        {"appId": app["appId"], "action": "login", "status": "success", "logType": "user", "value": "",
         "createdAt": utc_now() - datetime.timedelta(days=40)},
    ])

    body = operator.get("/stat", appId=app["appId"], target="logins", days="3").json()

    today = utc_now().date()
    assert body == {"loginsPerDay": [
        {"date": (today - datetime.timedelta(days=2)).isoformat(), "logins": 3},
        {"date": (today - datetime.timedelta(days=1)).isoformat(), "logins": 0},
        {"date": today.isoformat(), "logins": 2},
    ]}
    default = operator.get("/stat", appId=app["appId"], target="logins").json()
    assert len(default["loginsPerDay"]) == 30
    assert sum(day["logins"] for day in default["loginsPerDay"]) == 5


def test_stat_pages_targets(operator, app, api):
    for number in range(3):
        register_user(api, app, f"paged{number}@example.com")

    page = operator.get("/stat", appId=app["appId"], target="users", limit="2", offset="1").json()

    assert page["totalUser"] == 3
    assert [user["handle"] for user in page["users"]] == ["paged0@example.com"]
    invites = operator.get("/stat", appId=app["appId"], target="invites").json()
    assert invites == {"invites": [], "totalInvite": 0, "pendingInvites": 0}


@pytest.mark.parametrize("params, body", [
    ({"target": "apps"}, INVALID_DATA), ({"days": "0"}, INVALID_DATA), ({"days": "400"}, INVALID_DATA),
    ({"limit": "500"}, INVALID_DATA),
])
def test_stat_rejects_bad_parameters(operator, app, params, body):
    response = operator.get("/stat", appId=app["appId"], **params)
    assert response.status_code == 400
    assert response.json() == body


def test_stat_errors(operator):
    assert operator.get("/stat").json() == MISSING_PARAM
    assert operator.get("/stat", appId=UNKNOWN_APP_ID).json() == APP_NOT_FOUND


# Retention


def test_purge_removes_logs_past_retention(app, database, monkeypatch):
    from cosync.settings import get_settings

    monkeypatch.setenv("APPLOG_RETENTION_DAYS", "10")
    get_settings.cache_clear()
    audit_log(database).insert_many([
        {"appId": app["appId"], "action": "old", "status": "success", "logType": "app", "value": "",
         "createdAt": utc_now() - datetime.timedelta(days=11)},
        {"appId": app["appId"], "action": "recent", "status": "success", "logType": "app", "value": "",
         "createdAt": utc_now() - datetime.timedelta(days=9)},
    ])

    purge_expired_records(None)

    actions = {record["action"] for record in audit_log(database).find({"appId": app["appId"]})}
    assert "old" not in actions
    assert {"recent", "create"} <= actions


def test_purge_keeps_logs_with_retention_zero(app, database, monkeypatch):
    from cosync.settings import get_settings

    monkeypatch.setenv("APPLOG_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    audit_log(database).insert_one({"appId": app["appId"], "action": "ancient", "status": "success", "logType": "app",
                                      "value": "", "createdAt": utc_now() - datetime.timedelta(days=3000)})

    purge_expired_records(None)

    assert audit_log(database).count_documents({"appId": app["appId"], "action": "ancient"}) == 1


def test_log_retention_without_ttl_support_is_logged(database, caplog):
    caplog.set_level(logging.WARNING, logger="cosync.db")
    db.ensure_log_retention(database, 30)

    indexes = audit_log(database).index_information()
    if db.LOG_TTL_INDEX in indexes:
        assert indexes[db.LOG_TTL_INDEX]["expireAfterSeconds"] == 30 * 24 * 3600
        db.ensure_log_retention(database, 7)
        assert audit_log(database).index_information()[db.LOG_TTL_INDEX]["expireAfterSeconds"] == 7 * 24 * 3600
        db.ensure_log_retention(database, 0)
        assert db.LOG_TTL_INDEX not in audit_log(database).index_information()
    else:
        assert "the purge timer removes old records" in caplog.text
