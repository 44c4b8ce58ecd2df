"""The audit writer: records go to `applogs` after the response, in batches, and none is lost
when the process exits or MongoDB refuses one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from conftest import reset_caches
from cosync import audit, db, localdb
from flows import audit_log

ROOT = Path(__file__).resolve().parent.parent


def test_records_queued_together_go_in_fewer_inserts(counter, database):
    with counter.counting() as commands:
        for number in range(50):
            audit.record("batch-app", "login", "success", f"user{number}@example.com")

    handles = sorted(record["handle"] for record in audit_log(database).find({"appId": "batch-app"}))
    assert handles == sorted(f"user{number}@example.com" for number in range(50))
    assert commands.request == []
    assert 1 <= len(commands.after_response) < 50
    assert set(commands.after_response) == {"insert applogs"}


def test_full_queue_makes_the_request_write_its_record(counter, database, monkeypatch):
    monkeypatch.setattr(audit, "MAX_QUEUED", 0)

    with counter.counting() as commands:
        audit.record("inline-app", "login", "error", "inline@example.com", code=600)

    assert (commands.request, commands.after_response) == (["insert applogs"], [])
    record = database[db.APP_LOGS].find_one({"appId": "inline-app"})
    assert (record["action"], record["status"], record["logType"]) == ("login", "error", "user")
    assert json.loads(record["value"]) == {"handle": "inline@example.com", "code": 600}


def test_unwritable_record_logged_in_full(environment, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.ERROR, logger="cosync.audit")
    # A warm worker whose database then goes away: its own FerretDB, stopped after first use.
    doomed = localdb.start(tmp_path / "doomed")
    try:
        monkeypatch.setenv("MONGODB_URI", doomed.uri)
        monkeypatch.setenv("MONGODB_TIMEOUT_MS", "300")
        reset_caches()
        db.get_database()
    finally:
        doomed.stop()

    audit.record("gone-app", "login", "error", "gone@example.com", code=600)
    assert audit.flush(30)

    [message] = [entry.getMessage() for entry in caplog.records if "could not write audit record" in entry.getMessage()]
    logged = json.loads(message.split("; the record: ", 1)[1])
    assert {key: logged[key] for key in ("appId", "action", "status", "handle", "value")} == {
        "appId": "gone-app", "action": "login", "status": "error", "handle": "gone@example.com",
        "value": '{"handle":"gone@example.com","code":600}',
    }
    # The writer goes on once the database is back.
    monkeypatch.setenv("MONGODB_URI", environment["MONGODB_URI"])
    monkeypatch.delenv("MONGODB_TIMEOUT_MS")
    reset_caches()
    audit.record("gone-app", "login", "success", "back@example.com")
    records = audit_log(db.get_database()).find({"appId": "gone-app"})
    assert [record["handle"] for record in records] == ["back@example.com"]


def _run_python(script: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh Python process with the test's settings."""
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, **environment},
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_records_queued_at_exit_are_written(environment, database):
    script = (
        "from cosync import audit\n"
        "for number in range(20):\n"
        "    audit.record('exit-app', 'login', 'success', f'exit{number}@example.com')\n"
    )
    result = _run_python(script, environment)

    assert result.returncode == 0, result.stderr
    # A record logged as unwritten would show here.
    assert result.stderr == ""
    assert audit_log(database).count_documents({"appId": "exit-app"}) == 20


def test_forked_child_leaves_parent_records(environment, database):
    # The child flushes and exits at once; the parent's queued record must be written once.
    script = (
        "import os\n"
        "from cosync import audit, db\n"
        "db.get_database()\n"
        "audit.record('fork-app', 'login', 'success', 'parent@example.com')\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    os._exit(0 if audit.flush(5) else 3)\n"
        "assert os.waitpid(child, 0)[1] == 0, 'the child could not flush'\n"
    )
    result = _run_python(script, environment)

    assert result.returncode == 0, result.stderr
    assert audit_log(database).count_documents({"appId": "fork-app"}) == 1
