"""`python -m cosync invites create|resend|remove`, run as subprocesses against FerretDB."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from cosync import db
from flows import digest, error, latest_code, register_user

ROOT = Path(__file__).resolve().parent.parent


def _cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    # The `environment` fixture has put the test database, secrets and outbox into os.environ.
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cosync", "invites", *arguments],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )


def test_cli_create_prints_table(new_app, database, api):
    app = new_app()
    register_user(api, app, "member@example.com")
    result = _cli("create", app["appId"], "Ann@example.com,bob@example.com", "member@example.com")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "RESULT", "EXPIRES"]
    assert lines[1].startswith("ann@example.com")
    assert "invited" in lines[1]
    assert lines[2].startswith("bob@example.com")
    assert lines[3].startswith("member@example.com")
    assert "skipped: has an account or a live invitation" in lines[3]
    assert len(lines) == 4
    assert database[db.INVITES].count_documents({"appId": app["appId"], "senderHandle": "superuser"}) == 2
    code = latest_code("ann@example.com")
    registered = api.post(
        "/api/appuser/register",
        headers={"app-token": app["appToken"]},
        json={"handle": "ann@example.com", "password": digest("pw"), "code": code},
    )
    assert registered.status_code == 200


def test_cli_create_json(new_app):
    app = new_app()
    result = _cli("create", app["appId"], "json@example.com", "--json", "--locale", "en")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [item["handle"] for item in body["invites"]] == ["json@example.com"]
    assert body["invites"][0]["locale"] == "EN"
    assert body["exists"] == []
    assert body["failed"] == []


def test_cli_resend_and_remove(new_app, database, api):
    app = new_app()
    assert _cli("create", app["appId"], "cycle@example.com").returncode == 0
    first = latest_code("cycle@example.com")

    resent = _cli("resend", app["appId"], "Cycle@example.com")
    assert resent.returncode == 0, resent.stderr
    assert resent.stdout == "sent a new code to cycle@example.com\n"
    stored = database[db.INVITES].find_one({"appId": app["appId"], "handle": "cycle@example.com"})
    assert stored["status"] == "pending"
    if latest_code("cycle@example.com") != first:
        stale = api.post(
            "/api/appuser/register",
            headers={"app-token": app["appToken"]},
            json={"handle": "cycle@example.com", "password": digest("pw"), "code": first},
        )
        assert stale.json() == error(602, "invalid data")

    as_json = _cli("resend", app["appId"], "cycle@example.com", "--json")
    assert json.loads(as_json.stdout) == {"resent": "cycle@example.com"}

    removed = _cli("remove", app["appId"], "cycle@example.com")
    assert removed.returncode == 0, removed.stderr
    lines = removed.stdout.splitlines()
    assert lines[0].split() == ["EMAIL", "STATUS", "SENT", "BY", "UPDATED"]
    assert lines[1].split()[:3] == ["cycle@example.com", "pending", "superuser"]
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0
    code = latest_code("cycle@example.com")
    registered = api.post(
        "/api/appuser/register",
        headers={"app-token": app["appToken"]},
        json={"handle": "cycle@example.com", "password": digest("pw"), "code": code},
    )
    assert registered.json() == error(602, "invalid data")


def test_cli_remove_json(new_app):
    app = new_app()
    assert _cli("create", app["appId"], "rj@example.com").returncode == 0
    result = _cli("remove", app["appId"], "rj@example.com", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["handle"] == "rj@example.com"
    assert "codeHash" not in body


def test_cli_errors_are_one_line(new_app):
    app = new_app()
    cases = [
        (("create", "no-such-app", "x@example.com"), "error: no app no-such-app"),
        (("create", app["appId"], "not-mail"), "error: 'not-mail' is not an e-mail address"),
        (("resend", app["appId"], "none@example.com"), "error: no pending invite for this address"),
        (("remove", app["appId"], "none@example.com"), "error: no invite for this address"),
    ]
    for arguments, expected in cases:
        result = _cli(*arguments)
        assert result.returncode == 1, arguments
        assert result.stdout == ""
        # Log records (time-stamped, such as FerretDB's missing TTL indexes) may come first.
        messages = [line for line in result.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", line)]
        assert messages == [expected], result.stderr
