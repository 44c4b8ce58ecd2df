"""Hot paths: database commands per request, the app cache, batched rate limits, Argon2id
upgrades and the benchmark suite's smoke run.

Commands are counted with a pymongo CommandListener around one in-process call of the
registered function, on a warm worker (app document cached). The counts are exact, so a
change that adds a round trip fails here; timings are left to bench/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from cosync import app_cache, counters, db
from cosync.settings import get_settings
from flows import audit_log, digest, error, latest_code, register_user

ROOT = Path(__file__).resolve().parent.parent

from harness import CommandCounter, FunctionClient  # noqa: E402  (conftest puts bench/ on the path)

PASSWORD = "correct horse"


@pytest.fixture
def warm(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn the app cache on, as on a deployed worker."""
    monkeypatch.setenv("APP_CACHE_SECONDS", "30")
    get_settings.cache_clear()


@pytest.fixture
def functions(environment: dict[str, str]) -> FunctionClient:
    from function_app import app

    return FunctionClient(app)


def _sign_up(functions: FunctionClient, app: dict[str, Any], handle: str) -> dict[str, Any]:
    headers = {"app-token": app["appToken"]}
    assert functions.call("signup", {"handle": handle, "password": digest(PASSWORD)}, headers=headers).status == 200
    reply = functions.call("completeSignup", {"handle": handle, "code": latest_code(handle)}, headers=headers)
    assert reply.status == 200
    return reply.body


def _count(counter: CommandCounter, call) -> tuple[Any, list[str], list[str]]:
    """Return the reply, the commands sent before it, and those the audit writer sent after."""
    with counter.counting() as commands:
        reply = call()
    return reply, commands.request, commands.after_response


@pytest.mark.usefixtures("warm")
def test_get_user_sends_one_command(counter, functions, new_app):
    app = new_app()
    session = _sign_up(functions, app, "reader@example.com")
    headers = {"access-token": session["access-token"]}
    functions.call("getUser", headers=headers)

    reply, commands, after = _count(counter, lambda: functions.call("getUser", headers=headers))

    assert reply.status == 200
    assert (commands, after) == (["find users"], [])


@pytest.mark.usefixtures("warm")
def test_login_three_commands_then_audit(counter, functions, new_app, database):
    app = new_app()
    _sign_up(functions, app, "login@example.com")
    body = {"handle": "login@example.com", "password": digest(PASSWORD)}

    reply, commands, after = _count(counter, lambda: functions.call("login", body, headers={"app-token": app["appToken"]}))

    assert reply.status == 200
    # The rate-limit slots and the user read overlap, so their order varies.
    assert sorted(commands[:2]) == ["find users", "insert counters"]
    assert (commands[2:], after) == (["update users"], ["insert applogs"])
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "login@example.com"})
    record = audit_log(database).find_one({"appId": app["appId"], "action": "login"})
    assert (record["status"], record["value"]) == ("success", '{"handle":"login@example.com"}')
    assert user["lastLogin"] <= record["createdAt"]


@pytest.mark.usefixtures("warm")
def test_login_wrong_password_sends_two_commands(counter, functions, new_app):
    app = new_app()
    _sign_up(functions, app, "wrong@example.com")
    body = {"handle": "wrong@example.com", "password": digest("wrong")}

    reply, commands, after = _count(counter, lambda: functions.call("login", body, headers={"app-token": app["appToken"]}))

    assert (reply.status, reply.body) == (400, error(600, "invalid login credentials"))
    assert (sorted(commands), after) == (["find users", "insert counters"], ["insert applogs"])


@pytest.mark.usefixtures("warm")
def test_signup_code_flow_sends_four_commands(counter, functions, new_app):
    app = new_app()
    headers = {"app-token": app["appToken"]}
    functions.call("signup", {"handle": "first@example.com", "password": digest(PASSWORD)}, headers=headers)
    body = {"handle": "second@example.com", "password": digest(PASSWORD)}

    reply, commands, after = _count(counter, lambda: functions.call("signup", body, headers=headers))

    assert reply.status == 200
    assert commands == ["insert counters", "find users", "findAndModify signups", "insert signupcodes"]
    assert after == ["insert applogs"]


@pytest.mark.usefixtures("warm")
def test_signup_without_verification_sends_three_commands(counter, functions, new_app):
    app = new_app(signupFlow="none")
    headers = {"app-token": app["appToken"]}
    functions.call("signup", {"handle": "first@example.com", "password": digest(PASSWORD)}, headers=headers)
    body = {"handle": "second@example.com", "password": digest(PASSWORD)}

    reply, commands, after = _count(counter, lambda: functions.call("signup", body, headers=headers))

    assert reply.status == 200
    assert (commands, after) == (["insert counters", "insert users", "update signups"], ["insert applogs"])


@pytest.mark.usefixtures("warm")
def test_signup_without_verification_rejects_registered_handle(functions, new_app, database):
    app = new_app(signupFlow="none")
    headers = {"app-token": app["appToken"]}
    body = {"handle": "taken@example.com", "password": digest(PASSWORD)}
    assert functions.call("signup", body, headers=headers).status == 200

    reply = functions.call("signup", body, headers=headers)

    assert (reply.status, reply.body) == (400, error(601, "handle already registered"))
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 1
    assert audit_log(database).count_documents({"appId": app["appId"], "action": "signup", "status": "error"}) == 1


@pytest.mark.usefixtures("warm")
def test_signup_for_registered_handle_returns_mail_slot(functions, new_app):
    app = new_app()
    _sign_up(functions, app, "owner@example.com")
    body = {"handle": "owner@example.com", "password": digest(PASSWORD)}

    reply = functions.call("signup", body, headers={"app-token": app["appToken"]})

    assert (reply.status, reply.body) == (400, error(601, "handle already registered"))
    mail_keys = db.collection(db.COUNTERS).distinct("key", {"key": {"$regex": f"^signup-mail:{app['appId']}:owner@"}})
    assert [counters.count(key) for key in mail_keys] == [1]


# The app cache


@pytest.mark.usefixtures("warm")
def test_suspension_by_this_worker_applies_at_once(api, server_secret, functions, new_app):
    app = new_app()
    session = _sign_up(functions, app, "member@example.com")
    headers = {"access-token": session["access-token"]}
    assert functions.call("getUser", headers=headers).status == 200

    suspended = api.post(
        "/api/app/updateAppSetting",
        headers={"server-secret": server_secret},
        json={"appId": app["appId"], "setting": "status", "status": "inactive"},
    )

    assert suspended.status_code == 200
    reply = functions.call("getUser", headers=headers)
    assert (reply.status, reply.body) == (400, error(402, "app is suspended"))


@pytest.mark.usefixtures("warm")
def test_change_by_other_worker_waits_for_ttl(functions, new_app, monkeypatch):
    app = new_app()
    session = _sign_up(functions, app, "member@example.com")
    headers = {"access-token": session["access-token"]}
    assert functions.call("getUser", headers=headers).status == 200
    # Another worker or the CLI suspends the app: only the database changes.
    db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": {"status": "inactive"}})

    assert functions.call("getUser", headers=headers).status == 200

    later = time.monotonic() + 31
    monkeypatch.setattr(app_cache, "clock", lambda: later)
    reply = functions.call("getUser", headers=headers)
    assert (reply.status, reply.body) == (400, error(402, "app is suspended"))


@pytest.mark.usefixtures("warm")
def test_key_rotation_by_this_worker_signs_with_new_key(api, server_secret, functions, new_app):
    import jwt

    app = new_app()
    _sign_up(functions, app, "member@example.com")
    body = {"handle": "member@example.com", "password": digest(PASSWORD)}
    before = functions.call("login", body, headers={"app-token": app["appToken"]}).body["jwt"]

    rotated = api.post("/api/app/rotateAppKey", headers={"server-secret": server_secret}, json={"appId": app["appId"]})

    assert rotated.status_code == 200
    after = functions.call("login", body, headers={"app-token": app["appToken"]}).body["jwt"]
    assert jwt.get_unverified_header(before)["kid"] != rotated.json()["kid"]
    assert jwt.get_unverified_header(after)["kid"] == rotated.json()["kid"]


def test_cache_returns_copies(warm, new_app):
    from cosync.services.apps import load_app

    app = new_app()
    first = load_app(app["appId"])
    first["status"] = "inactive"

    assert load_app(app["appId"])["status"] == "active"


# Batched rate limits


def test_parallel_logins_stay_within_handle_limit(api, new_app):
    app = new_app()
    register_user(api, app, "target@example.com")
    body = {"handle": "target@example.com", "password": digest("wrong")}

    def attempt(number: int) -> int:
        return api.post("/api/appuser/login", headers={"app-token": app["appToken"]}, json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(24)))

    assert statuses.count(400) == 10
    assert statuses.count(429) == 14


def test_rejected_login_counts_nowhere(api, new_app, database):
    app = new_app()
    headers = {"app-token": app["appToken"]}
    body = {"handle": "nobody@example.com", "password": digest("wrong")}
    for _ in range(10):
        assert api.post("/api/appuser/login", headers=headers, json=body).status_code == 400

    assert api.post("/api/appuser/login", headers=headers, json=body).status_code == 429

    # The development server appends the peer address, 127.0.0.1, as Azure's front ends do.
    address_slots = database[db.COUNTERS].count_documents({"key": {"$regex": f"^login-address:{app['appId']}:127\\.0\\.0\\.1:"}})
    assert address_slots == 10


# Argon2id parameters


def test_login_rehashes_previous_argon2_parameters(api, new_app, database):
    app = new_app()
    register_user(api, app, "old@example.com", PASSWORD)
    kdf = Argon2id(salt=os.urandom(16), length=32, iterations=2, lanes=1, memory_cost=19 * 1024)
    previous = kdf.derive_phc_encoded(digest(PASSWORD).encode("ascii"))
    database[db.USERS].update_one({"appId": app["appId"], "handle": "old@example.com"}, {"$set": {"password": previous}})

    response = api.post(
        "/api/appuser/login", headers={"app-token": app["appToken"]}, json={"handle": "old@example.com", "password": digest(PASSWORD)}
    )

    assert response.status_code == 200
    stored = database[db.USERS].find_one({"appId": app["appId"], "handle": "old@example.com"})["password"]
    assert stored.startswith("$argon2id$v=19$m=28672,t=3,p=1$")


# Cold start


def test_function_app_import_skips_heavy_sdks():
    heavy = ["sendgrid", "twilio", "azure.identity", "azure.keyvault", "segno", "requests"]
    script = f"import sys, function_app; print([name for name in {heavy!r} if name in sys.modules])"

    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


# The benchmark suite


def test_bench_quick_run_writes_report(environment, tmp_path):
    output = tmp_path / "benchmarks.md"

    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(output)],
        env={**os.environ}, capture_output=True, text=True, timeout=600, check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    report = output.read_text(encoding="utf-8")
    assert "## Targets" in report
    assert "| getUser | access token | 1 | find users |" in report
    assert "## Cold start" in report
