"""`python -m cosync users ...`, `export` and `import`, run as subprocesses against FerretDB."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cosync import db
from flows import error
from operator_helpers import PASSWORD, add_user, login

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(environment):
    """Run the CLI with the test server's settings; keyword `database` picks another database."""

    def run(*args: str, stdin: str | None = None, database: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **environment}
        if database:
            env["MONGODB_DATABASE"] = database
        return subprocess.run(
            [sys.executable, "-m", "cosync", *args],
            cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
        )

    return run


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """Return the error line of a failed command; log lines may precede it on standard error."""
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.endswith(errors[0] + "\n")
    return errors[0]


def test_users_add_creates_user_who_can_log_in(cli, api, new_app):
    app = new_app()

    result = cli("users", "add", app["appId"], "Cli@Example.com", "--password-stdin", stdin=PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("added user cli@example.com (")
    assert login(api, app["appToken"], "cli@example.com").status_code == 200


def test_users_add_json_and_errors(cli, new_app):
    app = new_app()

    created = cli("users", "add", app["appId"], "json@example.com", "--password-stdin", "--json", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["handle"] == "json@example.com"
    assert body["status"] == "active"
    assert "password" not in body

    duplicate = cli("users", "add", app["appId"], "json@example.com", "--password-stdin", stdin=PASSWORD)
    assert one_line_error(duplicate) == "error: handle already has an account"
    no_terminal = cli("users", "add", app["appId"], "other@example.com", stdin="")
    assert one_line_error(no_terminal) == "error: standard input is not a terminal; pass the password with --password-stdin"
    empty = cli("users", "add", app["appId"], "other@example.com", "--password-stdin", stdin="\n")
    assert one_line_error(empty) == "error: the password is empty"
    unknown = cli("users", "add", "0" * 32, "other@example.com", "--password-stdin", stdin=PASSWORD)
    assert one_line_error(unknown) == f"error: no app {'0' * 32}"


def test_users_list_prints_table_and_json(cli, api, new_app, server_secret):
    app = new_app()
    for handle in ("b.one@example.com", "bxone@example.com", "carol@example.com"):
        add_user(api, server_secret, app, handle)

    table = cli("users", "list", app["appId"])
    searched = cli("users", "list", app["appId"], "--search", "b.one", "--json")
    paged = cli("users", "list", app["appId"], "--page", "1", "--limit", "2", "--json")

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["handle", "status", "userName", "locale", "createdAt", "lastLogin", "_id"]
    assert [line.split()[0] for line in lines[1:4]] == ["b.one@example.com", "bxone@example.com", "carol@example.com"]
    assert lines[1].split()[1:4] == ["active", "-", "EN"]
    assert lines[-1] == "1-3 of 3 users"
    found = json.loads(searched.stdout)
    assert found["total"] == 1
    assert [user["handle"] for user in found["users"]] == ["b.one@example.com"]
    assert [user["handle"] for user in json.loads(paged.stdout)["users"]] == ["carol@example.com"]


def test_users_list_errors(cli, new_app):
    app = new_app()
    assert one_line_error(cli("users", "list", app["appId"], "--limit", "500")) == "error: offset (page number) must be 0 or more and limit (page size) 1 to 100"
    assert one_line_error(cli("users", "list", "f" * 32)) == f"error: no app {'f' * 32}"


def test_users_suspend_and_activate(cli, api, new_app, server_secret):
    app = new_app()
    add_user(api, server_secret, app, "toggle@example.com")

    suspended = cli("users", "suspend", app["appId"], "toggle@example.com")
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout == "suspended user toggle@example.com; its access tokens no longer work\n"
    assert login(api, app["appToken"], "toggle@example.com").json() == error(404, "user account is suspended")

    activated = cli("users", "activate", app["appId"], "toggle@example.com", "--json")
    assert activated.returncode == 0, activated.stderr
    assert json.loads(activated.stdout) == {"handle": "toggle@example.com", "status": "active"}
    assert login(api, app["appToken"], "toggle@example.com").status_code == 200

    missing = cli("users", "suspend", app["appId"], "nobody@example.com")
    assert one_line_error(missing) == f"error: no such user in app {app['appId']}"


def test_users_remove(cli, api, new_app, server_secret, database):
    app = new_app()
    add_user(api, server_secret, app, "leaving@example.com")

    removed = cli("users", "remove", app["appId"], "leaving@example.com")

    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "removed user leaving@example.com\n"
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0
    assert one_line_error(cli("users", "remove", app["appId"], "leaving@example.com")) == f"error: no such user in app {app['appId']}"


def test_export_and_import_commands(cli, api, new_app, server_secret, environment, tmp_path):
    app = new_app()
    add_user(api, server_secret, app, "moved@example.com")
    target = tmp_path / "app.json"
    fresh = f"{environment['MONGODB_DATABASE']}_cli_{uuid.uuid4().hex[:6]}"

    try:
        exported = cli("export", app["appId"], str(target))
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout == f"exported app {app['appId']} to {target}\n"
        assert "keep it as safe as the database" in exported.stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert json.loads(target.read_text())["users"][0]["handle"] == "moved@example.com"
        assert one_line_error(cli("export", app["appId"], str(target))) == f"error: {target} exists; pass --force to replace it"
        assert cli("export", app["appId"], str(target), "--force").returncode == 0

        imported = cli("import", str(target), database=fresh)
        assert imported.returncode == 0, imported.stderr
        lines = imported.stdout.splitlines()
        assert lines[0] == f"imported app {app['name']!r}: 1 users, 1 signups, 0 invites, 8 emailTemplates"
        assert lines[1] == f"appId     {app['appId']}"
        assert lines[2] == f"appToken  {app['appToken']}"
        listed = json.loads(cli("users", "list", app["appId"], "--json", database=fresh).stdout)
        assert [user["handle"] for user in listed["users"]] == ["moved@example.com"]

        again = cli("import", str(target), database=fresh)
        assert one_line_error(again) == f"error: app {app['appId']} exists; import with overwrite=true (CLI: --overwrite) to replace it"
        replaced = cli("import", str(target), "--overwrite", "--json", database=fresh)
        assert replaced.returncode == 0, replaced.stderr
        assert json.loads(replaced.stdout)["imported"]["users"] == 1
    finally:
        db.get_client().drop_database(fresh)


def test_export_to_standard_output_and_import_errors(cli, new_app, tmp_path):
    app = new_app()

    exported = cli("export", app["appId"], "-")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["app"]["appId"] == app["appId"]

    assert one_line_error(cli("export", "1" * 32, "-")) == f"error: no app {'1' * 32}"
    assert one_line_error(cli("import", str(tmp_path / "missing.json"))) == f"error: cannot read {tmp_path / 'missing.json'}: No such file or directory"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert one_line_error(cli("import", str(broken))) == "error: file is neither JSON nor a ZIP archive"
