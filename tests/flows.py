"""Helpers shared by the route tests: password digests, outbox codes, sign-up and login."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from cosync import audit, db
from cosync.mail import read_outbox


def digest(password: str) -> str:
    """Return the MD5 hex of a password, as every Cosync SDK sends it."""
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def latest_code(to: str) -> str:
    """Return the six-digit code of the newest outbox message sent to `to`."""
    messages = [message for message in read_outbox() if message["to"] == to]
    assert messages, f"no message to {to} in the outbox"
    match = re.search(r"<strong>(\d{6})</strong>", messages[-1]["html"])
    assert match, "message carries no six-digit code"
    return match.group(1)


def sign_up(api: Any, app: dict[str, Any], handle: str, password: str = "correct horse") -> str:
    """Sign `handle` up and return the code that was e-mailed."""
    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        json={"handle": handle, "password": digest(password)},
    )
    assert response.status_code == 200, response.text
    assert response.content == b"true"
    return latest_code(handle.strip().lower())


def register_user(api: Any, app: dict[str, Any], handle: str, password: str = "correct horse") -> dict[str, Any]:
    """Sign up and complete; return the session body (`jwt`, `access-token`)."""
    code = sign_up(api, app, handle, password)
    response = api.post(
        "/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json={"handle": handle, "code": code}
    )
    assert response.status_code == 200, response.text
    return response.json()


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def attempts_used(app: dict[str, Any], handle: str) -> int:
    """Return how many guesses have been counted on the pending codes of `handle`."""
    from cosync import counters, db

    entries = db.collection(db.SIGNUP_CODES).find({"appId": app["appId"], "handle": handle}, {"_id": 1})
    return sum(counters.count(f"signup-code:{entry['_id']}") for entry in entries)


def code_entries(database: Any, app: dict[str, Any], handle: str) -> list[dict[str, Any]]:
    """Return the stored sign-up code entries of `handle`, oldest first."""
    from cosync import db

    return list(database[db.SIGNUP_CODES].find({"appId": app["appId"], "handle": handle}).sort("createdAt", 1))


def audit_log(database: Database) -> Collection:
    """Return `applogs` once the audit records queued in this process are written."""
    audit.flush()
    return database[db.APP_LOGS]
