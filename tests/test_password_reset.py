"""POST /api/appuser/forgotPassword, POST /api/appuser/resetPassword and the operator's
POST /api/app/resetUserPassword with its CLI command."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosync import db
from cosync.crypto import hash_code
from cosync.mail import read_outbox
from cosync.secrets import get_secrets
from flows import digest, error, latest_code, register_user, sign_up
from password_flows import (
    app_headers, forgot, login, messages_to, other_code, quick_forgot_password, reset,  # noqa: F401
)

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("quick_forgot_password")


def _user(database, app, handle):
    return database[db.USERS].find_one({"appId": app["appId"], "handle": handle})


def _reset_records(database, app, handle):
    return list(database[db.RESET_PASSWORDS].find({"appId": app["appId"], "handle": handle}))


def test_forgot_password_emails_code_and_stores_hash(api, new_app, database):
    app = new_app()
    register_user(api, app, "ada@example.com", "old password")

    response = forgot(api, app, " Ada@Example.com")

    assert response.status_code == 200
    assert response.content == b"true"
    message = read_outbox()[-1]
    assert message["to"] == "ada@example.com"
    assert message["subject"] == f"Reset your {app['name']} password"
    code = latest_code("ada@example.com")
    records = _reset_records(database, app, "ada@example.com")
    assert len(records) == 1
    assert records[0]["status"] == "pending"
    assert code not in json.dumps(records, default=str)
    assert records[0]["expiresAt"] - records[0]["createdAt"] == datetime.timedelta(minutes=30)


def test_forgot_password_unknown_handle_answers_true(api, new_app, database):
    """W12: an unknown handle gets the same response as a known one, and no mail goes out."""
    app = new_app()
    mailed = len(read_outbox())

    response = forgot(api, app, "ghost@example.com")

    assert response.status_code == 200
    assert response.content == b"true"
    assert len(read_outbox()) == mailed
    assert database[db.RESET_PASSWORDS].count_documents({"appId": app["appId"]}) == 0


def test_forgot_password_waits_minimum_time(api, new_app, monkeypatch):
    """W12: the response comes after the configured minimum time whether or not the account exists."""
    from cosync.settings import get_settings

    monkeypatch.setenv("FORGOT_PASSWORD_RESPONSE_MS", "300")
    get_settings.cache_clear()
    app = new_app()
    register_user(api, app, "timed@example.com")

    for handle in ("timed@example.com", "nobody@example.com"):
        response = forgot(api, app, handle)
        assert response.content == b"true"
        assert response.elapsed >= datetime.timedelta(milliseconds=300), handle


def test_reset_password_sets_password_and_revokes_tokens(api, new_app, database):
    """W7: a reset revokes every access token issued before it."""
    app = new_app()
    session = register_user(api, app, "reset@example.com", "old password")
    forgot(api, app, "reset@example.com")

    response = reset(api, app, "RESET@example.com", latest_code("reset@example.com"), "new password")

    assert response.status_code == 200
    assert response.content == b"true"
    assert login(api, app, "reset@example.com", "new password").status_code == 200
    assert login(api, app, "reset@example.com", "old password").json() == error(600, "invalid login credentials")
    stale = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert stale.json() == error(405, "invalid access token")
    assert _reset_records(database, app, "reset@example.com") == []


def test_reset_code_is_single_use(api, new_app):
    app = new_app()
    register_user(api, app, "once@example.com", "old password")
    forgot(api, app, "once@example.com")
    code = latest_code("once@example.com")
    assert reset(api, app, "once@example.com", code, "second password").content == b"true"

    again = reset(api, app, "once@example.com", code, "third password")

    assert again.status_code == 400
    assert again.json() == error(602, "invalid data")
    assert login(api, app, "once@example.com", "second password").status_code == 200


def test_reset_code_dies_after_five_wrong_guesses(api, new_app, database):
    """W6: a reset code accepts at most five guesses, the right one included."""
    app = new_app()
    register_user(api, app, "guess@example.com", "old password")
    forgot(api, app, "guess@example.com")
    code = latest_code("guess@example.com")
    before = _user(database, app, "guess@example.com")

    for _ in range(5):
        wrong = reset(api, app, "guess@example.com", other_code(code))
        assert wrong.json() == error(602, "invalid data")
    response = reset(api, app, "guess@example.com", code)

    assert response.json() == error(602, "invalid data")
    after = _user(database, app, "guess@example.com")
    assert after["password"] == before["password"]
    assert after["tokenVersion"] == before["tokenVersion"]
    assert login(api, app, "guess@example.com", "old password").status_code == 200


def test_new_reset_code_invalidates_older(api, new_app, database):
    """W6: each forgotPassword replaces the earlier reset code."""
    app = new_app()
    register_user(api, app, "twice@example.com", "old password")
    forgot(api, app, "twice@example.com")
    first = latest_code("twice@example.com")
    forgot(api, app, "twice@example.com")
    second = latest_code("twice@example.com")
    if first == second:
        pytest.skip("both reset codes happen to be equal")

    assert reset(api, app, "twice@example.com", first).json() == error(602, "invalid data")
    assert len(_reset_records(database, app, "twice@example.com")) == 1
    assert reset(api, app, "twice@example.com", second).content == b"true"


def test_reset_code_expires(api, new_app, database):
    """W6: a reset code expires after 30 minutes."""
    app = new_app()
    register_user(api, app, "late@example.com", "old password")
    forgot(api, app, "late@example.com")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    database[db.RESET_PASSWORDS].update_many({"appId": app["appId"]}, {"$set": {"expiresAt": past}})

    response = reset(api, app, "late@example.com", latest_code("late@example.com"))

    assert response.json() == error(602, "invalid data")
    assert login(api, app, "late@example.com", "old password").status_code == 200


def test_reset_ignores_plain_code_from_cosyncjwt(api, new_app, database):
    """W6: records written by CosyncJWT never expire, so their clear-text codes are not accepted."""
    app = new_app()
    register_user(api, app, "legacy@example.com", "old password")
    now = datetime.datetime.now(datetime.timezone.utc)
    database[db.RESET_PASSWORDS].insert_one(
        {"appId": app["appId"], "handle": "legacy@example.com", "code": 123456, "status": "pending", "createdAt": now}
    )

    assert reset(api, app, "legacy@example.com", "123456").json() == error(602, "invalid data")
    assert login(api, app, "legacy@example.com", "old password").status_code == 200


def test_reset_password_unknown_handle(api, new_app):
    app = new_app()
    assert reset(api, app, "nobody@example.com", "123456").json() == error(602, "invalid data")


def test_reset_password_bad_fields(api, new_app, database):
    app = new_app()
    register_user(api, app, "fields@example.com", "old password")
    headers = app_headers(app)
    url = "/api/appuser/resetPassword"
    good = {"handle": "fields@example.com", "password": digest("pw"), "code": "123456"}

    for name in good:
        partial = {key: value for key, value in good.items() if key != name}
        assert api.post(url, headers=headers, json=partial).json() == error(403, "missing parameter"), name
    for name, value in (("password", "x" * 32), ("password", "short"), ("code", "12ab56"), ("code", True)):
        assert api.post(url, headers=headers, json={**good, name: value}).json() == error(602, "invalid data"), value
    assert api.post(url, json=good).json() == error(403, "missing parameter")
    assert api.post(url, headers={"app-token": "not a token"}, json=good).json() == error(400, "invalid app token")


def test_forgot_password_bad_fields(api, new_app):
    """W5: a missing or non-string handle gets an error instead of crashing the server."""
    app = new_app()
    url = "/api/appuser/forgotPassword"
    assert api.post(url, headers=app_headers(app), json={}).json() == error(403, "missing parameter")
    assert api.post(url, headers=app_headers(app), json={"handle": ["a@example.com"]}).json() == error(602, "invalid data")
    assert api.post(url, json={"handle": "a@example.com"}).json() == error(403, "missing parameter")


def test_forgot_password_app_status(api, new_app, database):
    app = new_app()
    register_user(api, app, "status@example.com")
    mailed = len(read_outbox())
    for status, expected in (("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))):
        database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": status}})
        assert forgot(api, app, "status@example.com").json() == expected
        assert reset(api, app, "status@example.com", "123456").json() == expected
    database[db.APPS].delete_one({"appId": app["appId"]})
    assert forgot(api, app, "status@example.com").json() == error(401, "app no longer exist")
    assert reset(api, app, "status@example.com", "123456").json() == error(401, "app no longer exist")
    assert len(read_outbox()) == mailed


def test_forgot_password_by_user_name(api, new_app, database):
    """W14: a user name selects only the user-name field, never another user's handle."""
    app = new_app()
    register_user(api, app, "named@example.com", "old password")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "named@example.com"}, {"$set": {"userName": "ada"}})

    assert forgot(api, app, "Ada").json() == error(606, "app does not support username login")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"userNamesEnabled": True}})
    assert forgot(api, app, "Ada").content == b"true"
    assert messages_to("named@example.com")[-1]["subject"] == f"Reset your {app['name']} password"
    code = latest_code("named@example.com")
    assert reset(api, app, "ada", code, "new password").content == b"true"
    assert login(api, app, "named@example.com", "new password").status_code == 200


def test_reset_keeps_two_factor(api, new_app, database):
    """W19: a password reset leaves two-factor login on."""
    app = new_app()
    register_user(api, app, "second@example.com", "old password")
    flags = {"twoFactorGoogleVerification": True, "twoFactorPhoneVerification": True, "googleSecretKey": "sealed"}
    database[db.USERS].update_one({"appId": app["appId"], "handle": "second@example.com"}, {"$set": flags})
    forgot(api, app, "second@example.com")

    assert reset(api, app, "second@example.com", latest_code("second@example.com")).content == b"true"

    user = _user(database, app, "second@example.com")
    assert {name: user[name] for name in flags} == flags


def test_social_account_cannot_get_password(api, new_app, database):
    """W32: an Apple or Google account gets no reset code and cannot set a password by reset."""
    app = new_app()
    handle = "social@example.com"
    now = datetime.datetime.now(datetime.timezone.utc)
    database[db.USERS].insert_one(
        {"appId": app["appId"], "handle": handle, "password": "", "loginProvider": "apple", "status": "active",
         "socialUserId": "apple-sub", "tokenVersion": 0, "createdAt": now, "updatedAt": now}
    )
    mailed = len(read_outbox())

    assert forgot(api, app, handle).content == b"true"
    assert len(read_outbox()) == mailed

    code = "123456"
    code_hash = hash_code(get_secrets().encryption_key, "reset", app["appId"], handle, code)
    database[db.RESET_PASSWORDS].insert_one(
        {"appId": app["appId"], "handle": handle, "codeHash": code_hash, "status": "pending", "createdAt": now,
         "expiresAt": now + datetime.timedelta(minutes=5)}
    )
    assert reset(api, app, handle, code).json() == error(602, "invalid data")
    assert _user(database, app, handle)["password"] == ""


def test_suspended_user_gets_no_reset(api, new_app, database):
    """Suspended users get no code, and a code they already hold sets no password (404)."""
    app = new_app()
    register_user(api, app, "sus@example.com", "old password")
    forgot(api, app, "sus@example.com")
    code = latest_code("sus@example.com")
    database[db.USERS].update_one({"appId": app["appId"], "handle": "sus@example.com"}, {"$set": {"status": "suspend"}})
    mailed = len(read_outbox())

    assert forgot(api, app, "sus@example.com").content == b"true"
    assert len(read_outbox()) == mailed
    before = _user(database, app, "sus@example.com")["password"]
    assert reset(api, app, "sus@example.com", code).json() == error(404, "user account is suspended")
    assert _user(database, app, "sus@example.com")["password"] == before


def test_contested_account_recovers_through_reset(api, new_app, database):
    """W9: an account created without a password after a contested sign-up gets one by reset."""
    app = new_app()
    handle = "contested@example.com"
    owner_code = sign_up(api, app, handle, "owner password")
    sign_up(api, app, handle, "attacker password")
    completed = api.post(
        "/api/appuser/completeSignup", headers=app_headers(app), json={"handle": handle, "code": owner_code}
    )
    assert completed.status_code == 200
    assert _user(database, app, handle)["password"] == ""

    forgot(api, app, handle)
    assert reset(api, app, handle, latest_code(handle), "owner password").content == b"true"

    assert login(api, app, handle, "owner password").status_code == 200
    assert login(api, app, handle, "attacker password").json() == error(600, "invalid login credentials")


def test_forgot_and_reset_swift_form_body(api, new_app):
    """Swift sends form bodies with `%2B` for `+` in handles and values otherwise unencoded."""
    app = new_app()
    register_user(api, app, "ada+swift@example.com", "old password")

    forgot_response = api.post(
        "/api/appuser/forgotPassword", headers=app_headers(app), data="handle=ada%2Bswift@example.com"
    )
    assert forgot_response.content == b"true"
    code = latest_code("ada+swift@example.com")
    reset_response = api.post(
        "/api/appuser/resetPassword",
        headers=app_headers(app),
        data=f"handle=ada%2Bswift@example.com&password={digest('new password')}&code={code}",
    )

    assert reset_response.content == b"true"
    assert login(api, app, "ada+swift@example.com", "new password").status_code == 200


def test_reset_password_kotlin_app_token_in_access_token(api, new_app):
    """Kotlin sends the app token in the `access-token` header for resetPassword."""
    app = new_app()
    register_user(api, app, "kotlin@example.com", "old password")
    kotlin_headers = {"access-token": app["appToken"]}
    assert forgot(api, app, "kotlin@example.com", headers=kotlin_headers).content == b"true"

    response = reset(api, app, "kotlin@example.com", latest_code("kotlin@example.com"), headers=kotlin_headers)

    assert response.content == b"true"
    assert login(api, app, "kotlin@example.com", "new password").status_code == 200


def test_forgot_and_reset_js_access_token(api, new_app):
    """The JS SDK sends the user's access token on app routes while a session is held."""
    app = new_app()
    session = register_user(api, app, "js@example.com", "old password")
    js_headers = {"access-token": session["access-token"]}
    assert forgot(api, app, "js@example.com", headers=js_headers).content == b"true"

    response = reset(api, app, "js@example.com", latest_code("js@example.com"), headers=js_headers)

    assert response.content == b"true"


# Operator reset: POST /api/app/resetUserPassword


def _operator_reset(api, server_secret, **body):
    return api.post("/api/app/resetUserPassword", headers={"server-secret": server_secret}, json=body)


def test_operator_reset_emails_code_and_clears_password(api, new_app, database, server_secret):
    app = new_app()
    session = register_user(api, app, "op@example.com", "old password")

    response = _operator_reset(api, server_secret, appId=app["appId"], handle="op@example.com", rawValue="plain")

    assert response.status_code == 200
    assert response.content == b"true"
    message = messages_to("op@example.com")[-1]
    assert message["subject"] == f"Reset your {app['name']} password"
    assert "plain" not in message["html"]
    assert login(api, app, "op@example.com", "old password").json() == error(600, "invalid login credentials")
    stale = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert stale.json() == error(405, "invalid access token")
    assert reset(api, app, "op@example.com", latest_code("op@example.com"), "chosen").content == b"true"
    assert login(api, app, "op@example.com", "chosen").status_code == 200


def test_operator_reset_sets_given_md5(api, new_app, database, server_secret):
    app = new_app()
    session = register_user(api, app, "md5@example.com", "old password")
    user_id = str(_user(database, app, "md5@example.com")["_id"])
    mailed = len(read_outbox())

    response = _operator_reset(api, server_secret, appId=app["appId"], userId=user_id, hashValue=digest("given"))

    assert response.content == b"true"
    assert len(read_outbox()) == mailed
    assert login(api, app, "md5@example.com", "given").status_code == 200
    stale = api.get("/api/appuser/getUser", headers={"access-token": session["access-token"]})
    assert stale.json() == error(405, "invalid access token")


def test_operator_reset_is_scoped_to_app(api, new_app, database, server_secret):
    """Admin W10: a user of another app cannot be reached through this app's id."""
    app, other = new_app(), new_app()
    register_user(api, other, "elsewhere@example.com", "old password")
    user_id = str(_user(database, other, "elsewhere@example.com")["_id"])

    by_id = _operator_reset(api, server_secret, appId=app["appId"], userId=user_id, hashValue=digest("x"))
    by_handle = _operator_reset(api, server_secret, appId=app["appId"], handle="elsewhere@example.com")

    assert by_id.json() == error(603, "account does not exist")
    assert by_handle.json() == error(603, "account does not exist")
    assert login(api, other, "elsewhere@example.com", "old password").status_code == 200


def test_operator_reset_errors(api, new_app, database, server_secret):
    app = new_app()
    register_user(api, app, "err@example.com", "old password")
    before = _user(database, app, "err@example.com")

    no_secret = api.post("/api/app/resetUserPassword", json={"appId": app["appId"], "handle": "err@example.com"})
    assert no_secret.status_code == 403
    assert no_secret.json() == error(400, "invalid admin token")
    app_token = api.post(
        "/api/app/resetUserPassword", headers={"server-secret": app["appToken"]}, json={"appId": app["appId"]}
    )
    assert app_token.status_code == 401
    assert _operator_reset(api, server_secret, handle="err@example.com").json() == error(403, "missing parameter")
    assert _operator_reset(api, server_secret, appId=app["appId"]).json() == error(403, "missing parameter")
    assert _operator_reset(api, server_secret, appId="nope", handle="err@example.com").json() == error(
        401, "app no longer exist"
    )
    bad_hash = _operator_reset(api, server_secret, appId=app["appId"], handle="err@example.com", hashValue="plain")
    assert bad_hash.json() == error(602, "invalid data")
    bad_id = _operator_reset(api, server_secret, appId=app["appId"], userId="not-an-id", hashValue=digest("x"))
    assert bad_id.json() == error(602, "invalid data")
    assert _user(database, app, "err@example.com") == before


def test_operator_reset_social_account_needs_password(api, new_app, database, server_secret):
    app = new_app()
    now = datetime.datetime.now(datetime.timezone.utc)
    database[db.USERS].insert_one(
        {"appId": app["appId"], "handle": "g@example.com", "password": "", "loginProvider": "google",
         "status": "active", "tokenVersion": 0, "createdAt": now}
    )
    by_code = _operator_reset(api, server_secret, appId=app["appId"], handle="g@example.com")
    assert by_code.json() == error(602, "invalid data")
    by_md5 = _operator_reset(api, server_secret, appId=app["appId"], handle="g@example.com", hashValue=digest("pw"))
    assert by_md5.content == b"true"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cosync", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=120,
    )


def test_cli_reset_password_emails_code(api, new_app, database):
    app = new_app()
    register_user(api, app, "cli@example.com", "old password")

    result = _cli("users", "reset-password", app["appId"], "CLI@example.com")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "e-mailed a reset code to cli@example.com; the old password no longer works\n"
    assert messages_to("cli@example.com")[-1]["subject"] == f"Reset your {app['name']} password"
    assert login(api, app, "cli@example.com", "old password").json() == error(600, "invalid login credentials")


def test_cli_reset_password_sets_md5(api, new_app):
    app = new_app()
    register_user(api, app, "climd5@example.com", "old password")

    result = _cli("users", "reset-password", app["appId"], "climd5@example.com", "--password-md5", digest("cli pw"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "set the password of climd5@example.com\n"
    assert login(api, app, "climd5@example.com", "cli pw").status_code == 200


def test_cli_reset_password_unknown_user(new_app):
    app = new_app()

    result = _cli("users", "reset-password", app["appId"], "ghost@example.com")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: no such user in app {app['appId']}"


def test_parallel_resets_use_code_once(api, new_app, database):
    """W21: of parallel resets with the same right code, exactly one sets its password."""
    app = new_app()
    register_user(api, app, "race@example.com", "old password")
    forgot(api, app, "race@example.com")
    code = latest_code("race@example.com")
    passwords = [f"password {number}" for number in range(4)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda password: reset(api, app, "race@example.com", code, password), passwords))

    succeeded = [password for password, response in zip(passwords, responses) if response.content == b"true"]
    assert len(succeeded) == 1
    assert all(response.json() == error(602, "invalid data") for response in responses if response.content != b"true")
    assert login(api, app, "race@example.com", succeeded[0]).status_code == 200
