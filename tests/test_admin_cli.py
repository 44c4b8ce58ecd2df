"""The operator commands `apps`, `templates`, `locales`, `logs` and `stats`, run as subprocesses
against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosync import audit, db
from cosync.templates import DEFAULT_TEMPLATES
from flows import audit_log, digest, register_user

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(environment):
    env = {**os.environ, **environment}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cosync", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    return run


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _failed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_apps_create_list_show(cli, database):
    created = json.loads(_ok(cli("apps", "create", "CLI listed app", "--json")))

    listed = json.loads(_ok(cli("apps", "list", "--json")))
    searched = json.loads(_ok(cli("apps", "list", "--search", "cli LISTED", "--json")))
    table = _ok(cli("apps", "list", "--search", "CLI listed"))
    shown = json.loads(_ok(cli("apps", "show", created["appId"], "--json")))
    fields = _ok(cli("apps", "show", created["appId"]))

    assert created["appId"] in [app["appId"] for app in listed]
    assert [app["appId"] for app in searched] == [created["appId"]]
    assert table.splitlines()[0].split() == ["appId", "name", "status", "signupFlow", "createdAt"]
    assert created["appId"] in table.splitlines()[1]
    assert shown["appToken"] == created["appToken"]
    assert "appPrivateKey" not in shown
    assert ["appToken", created["appToken"]] in [line.split() for line in fields.splitlines()]


def test_apps_update_and_settings(cli, database):
    app = json.loads(_ok(cli("apps", "create", "CLI settings app", "--json")))
    app_id = app["appId"]

    updated = _ok(cli("apps", "update", app_id, "signupEnabled=false", "passwordMinLength=9"))
    setting = json.loads(_ok(cli("apps", "settings", app_id, "signupFlow", "signupFlow=link", "--json")))
    shown = json.loads(_ok(cli("apps", "settings", app_id, "--json")))

    assert updated.split() == ["passwordMinLength", "9", "signupEnabled", "no"]
    assert setting["signupFlow"] == "link"
    assert shown["signupEnabled"] is False
    assert shown["passwordMinLength"] == 9
    assert "appToken" not in shown
    stored = database[db.APPS].find_one({"appId": app_id})
    assert stored["signupFlow"] == "link"
    actions = [record["action"] for record in audit_log(database).find({"appId": app_id, "logType": "app"})]
    assert actions == ["create", "update", "updateAppSetting"]


def test_apps_commands_fail_with_one_line(cli, database):
    app = json.loads(_ok(cli("apps", "create", "CLI failing app", "--json")))

    assert _failed(cli("apps", "update", app["appId"], "appToken=stolen")) == (
        "error: field appToken cannot be changed with update"
    )
    assert _failed(cli("apps", "update", app["appId"], "noequals")) == "error: expected FIELD=VALUE, got 'noequals'"
    assert _failed(cli("apps", "settings", app["appId"], "status", "status=gone")) == (
        "error: status must be one of active, inactive, migrated"
    )
    assert _failed(cli("apps", "show", "0123456789abcdef0123456789abcdef")) == (
        "error: no app 0123456789abcdef0123456789abcdef"
    )
    assert _failed(cli("apps", "create", "CLI failing app")).startswith("error: an app named")
    assert database[db.APPS].find_one({"appId": app["appId"]})["appToken"] == app["appToken"]


def test_apps_delete_needs_confirmation(cli, database):
    app = json.loads(_ok(cli("apps", "create", "CLI doomed app", "--json")))

    assert _failed(cli("apps", "delete", app["appId"])).endswith("add --yes to confirm")
    assert database[db.APPS].count_documents({"appId": app["appId"]}) == 1
    assert _ok(cli("apps", "delete", app["appId"], "--yes")) == f"deleted app {app['appId']}\n"
    assert database[db.APPS].count_documents({"appId": app["appId"]}) == 0
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": app["appId"]}) == 0


def test_apps_reset_keeps_app(cli, api, new_app, database):
    app = new_app()
    register_user(api, app, "cli.reset@example.com")

    assert _failed(cli("apps", "reset", app["appId"])).endswith("add --yes to confirm")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 1
    assert _ok(cli("apps", "reset", app["appId"], "--yes")) == f"reset app {app['appId']}\n"
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0
    assert database[db.APPS].count_documents({"appId": app["appId"]}) == 1


def test_templates_and_locales(cli, database, tmp_path):
    app = json.loads(_ok(cli("apps", "create", "CLI template app", "--json")))
    app_id = app["appId"]
    body = tmp_path / "signup.html"
    body.write_text("<p>Bonjour %HANDLE%</p><p><strong>%CODE%</strong></p>", encoding="utf-8")

    added = _ok(cli("locales", "add", app_id, "fr", "de"))
    changed = json.loads(_ok(cli("templates", "set", app_id, "signUp", "--locale", "FR", "--subject", "Votre code",
                                 "--html-file", str(body), "--json")))
    listed = json.loads(_ok(cli("templates", "list", app_id, "--locale", "fr", "--json")))
    table = _ok(cli("templates", "list", app_id))
    removed = _ok(cli("locales", "remove", app_id, "DE"))

    assert added == f"locales of app {app_id}: EN, FR, DE\n"
    assert changed["subject"] == "Votre code"
    assert changed["htmlTemplate"] == "<p>Bonjour %HANDLE%</p>\n<p><strong>%CODE%</strong></p>"
    assert list(listed) == ["FR"]
    assert sorted(item["templateName"] for item in listed["FR"]) == sorted(DEFAULT_TEMPLATES)
    assert len(table.splitlines()) == 1 + 3 * len(DEFAULT_TEMPLATES)
    assert removed == f"locales of app {app_id}: EN, FR\n"
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": app_id, "locale": "DE"}) == 0
    assert _failed(cli("locales", "remove", app_id, "EN")) == "error: EN cannot be removed"
    assert _failed(cli("locales", "add", app_id, "XX")) == "error: unknown locale code 'XX'"
    assert _failed(cli("templates", "set", app_id, "signUp", "--html-file", str(tmp_path / "missing.html"))).startswith(
        "error: could not read"
    )


def test_logs_and_stats(cli, api, new_app):
    app = new_app()
    register_user(api, app, "cli.stats@example.com")
    login = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                     json={"handle": "cli.stats@example.com", "password": digest("correct horse")})
    assert login.status_code == 200
    # The CLI reads the log in another process, so this one writes its queued records first.
    audit.flush()

    logs = json.loads(_ok(cli("logs", app["appId"], "--action", "login", "--json")))
    table = _ok(cli("logs", app["appId"], "--type", "app"))
    stats = json.loads(_ok(cli("stats", app["appId"], "--days", "2", "--json")))
    stats_table = _ok(cli("stats", app["appId"]))

    assert logs["totalLog"] == 1
    assert logs["logs"][0]["handle"] == "cli.stats@example.com"
    assert table.splitlines()[0].split() == ["createdAt", "logType", "action", "status", "handle", "value"]
    assert table.splitlines()[-1] == "1 of 1 records"
    assert stats["totalUser"] == 1
    assert stats["pendingSignups"] == 0
    assert [day["logins"] for day in stats["loginsPerDay"]] == [0, 1]
    assert "users" not in stats
    assert stats_table.splitlines()[0].split() == ["users", "1"]
    assert _failed(cli("logs", app["appId"], "--from", "yesterday")) == "error: fromDate is not an ISO 8601 date: 'yesterday'"
