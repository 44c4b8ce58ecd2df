"""Rate limits per handle and per client address: login, code checks, forgotPassword, signup.

An exceeded limit returns HTTP 429 with the contract body of code 500 (the SDKs know no rate
limit code) and `Retry-After`, and changes no data. The development server, like Azure, appends
the peer address to `X-Forwarded-For`, so every request here comes from 127.0.0.1; the limits
count per app, so each test uses its own app.
"""

from __future__ import annotations

import re

import pytest

from cosync import db, ratelimit
from cosync.mail import read_outbox
from flows import digest, error, latest_code, register_user, sign_up
from password_flows import forgot, login, quick_forgot_password, reset  # noqa: F401

LIMITED = error(500, "internal server error")


def _assert_limited(response, limit):
    assert response.status_code == 429
    assert response.json() == LIMITED
    assert 0 < int(response.headers["Retry-After"]) <= limit.window.total_seconds()


def _user(database, app, handle):
    return database[db.USERS].find_one({"appId": app["appId"], "handle": handle})


def test_login_limit_per_handle(api, new_app, database):
    """W8: a handle gets 10 login attempts per 15 minutes, the right password included."""
    app = new_app()
    register_user(api, app, "target@example.com", "right")
    before = _user(database, app, "target@example.com")
    for _ in range(ratelimit.LOGIN_PER_HANDLE.events):
        assert login(api, app, "target@example.com", "guess").json() == error(600, "invalid login credentials")

    _assert_limited(login(api, app, "target@example.com", "right"), ratelimit.LOGIN_PER_HANDLE)
    _assert_limited(login(api, app, " TARGET@example.com", "right"), ratelimit.LOGIN_PER_HANDLE)
    assert _user(database, app, "target@example.com") == before
    assert register_user(api, app, "other@example.com", "pw")
    assert login(api, app, "other@example.com", "pw").status_code == 200


def test_login_limit_same_for_unknown_handle(api, new_app):
    """W12: a handle without an account is limited exactly like one with an account."""
    app = new_app()
    for _ in range(ratelimit.LOGIN_PER_HANDLE.events):
        assert login(api, app, "ghost@example.com", "guess").json() == error(600, "invalid login credentials")

    _assert_limited(login(api, app, "ghost@example.com", "guess"), ratelimit.LOGIN_PER_HANDLE)


def test_login_limit_per_address(api, new_app, database):
    app = new_app()
    register_user(api, app, "real@example.com", "pw")
    for number in range(ratelimit.LOGIN_PER_ADDRESS.events - 1):
        assert login(api, app, f"user{number}@example.com", "pw").json() == error(600, "invalid login credentials")
    assert login(api, app, "real@example.com", "pw").status_code == 200
    before = _user(database, app, "real@example.com")

    _assert_limited(login(api, app, "real@example.com", "pw"), ratelimit.LOGIN_PER_ADDRESS)
    assert _user(database, app, "real@example.com") == before
    other_app = new_app()
    assert login(api, other_app, "real@example.com", "pw").json() == error(600, "invalid login credentials")


@pytest.mark.usefixtures("quick_forgot_password")
def test_code_checks_limit_per_address(api, new_app, database):
    """W8: one address gets 60 code checks an hour, over every route that checks a code."""
    app = new_app()
    register_user(api, app, "owner@example.com", "old")
    forgot(api, app, "owner@example.com")
    reset_code = latest_code("owner@example.com")
    signup_code = sign_up(api, app, "pending@example.com")
    # The completeSignup inside register_user was the first code check.
    for number in range(ratelimit.CODE_CHECKS_PER_ADDRESS.events - 1):
        guess = reset(api, app, f"nobody{number}@example.com", "123456")
        assert guess.json() == error(602, "invalid data")
    before = _user(database, app, "owner@example.com")

    _assert_limited(reset(api, app, "owner@example.com", reset_code), ratelimit.CODE_CHECKS_PER_ADDRESS)
    completed = api.post(
        "/api/appuser/completeSignup",
        headers={"app-token": app["appToken"]},
        json={"handle": "pending@example.com", "code": signup_code},
    )
    _assert_limited(completed, ratelimit.CODE_CHECKS_PER_ADDRESS)
    assert _user(database, app, "owner@example.com") == before
    assert _user(database, app, "pending@example.com") is None
    assert database[db.RESET_PASSWORDS].count_documents({"appId": app["appId"]}) == 1


def test_code_checks_limit_on_link_pages(api, new_app, database):
    """W8: the sign-up link's page and confirmation count as code checks too."""
    app = new_app(signupFlow="link")
    assert api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        json={"handle": "link@example.com", "password": digest("pw")},
    ).content == b"true"
    link_html = [message for message in read_outbox() if message["to"] == "link@example.com"][-1]["html"]
    code = re.search(r"code=([0-9]{6})", link_html).group(1)
    params = {"appToken": app["appToken"], "handle": "link@example.com", "code": code}
    for _ in range(ratelimit.CODE_CHECKS_PER_ADDRESS.events):
        assert api.get("/api/appuser/completeSignup", params=params).status_code == 200

    page = api.get("/api/appuser/completeSignup", params=params)
    posted = api.post(
        "/api/appuser/completeSignup/confirm",
        params={"appToken": app["appToken"]},
        data={"handle": "link@example.com", "code": code},
    )

    for response in (page, posted):
        assert response.status_code == 429
        assert "<title>Too many attempts</title>" in response.text
        assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert _user(database, app, "link@example.com") is None


@pytest.mark.usefixtures("quick_forgot_password")
def test_forgot_password_limit_per_handle(api, new_app, database):
    app = new_app()
    register_user(api, app, "forgetful@example.com", "pw")
    for _ in range(ratelimit.FORGOT_PASSWORD_PER_HANDLE.events):
        assert forgot(api, app, "forgetful@example.com").content == b"true"
    mailed = len(read_outbox())
    records = list(database[db.RESET_PASSWORDS].find({"appId": app["appId"]}))

    _assert_limited(forgot(api, app, "Forgetful@example.com"), ratelimit.FORGOT_PASSWORD_PER_HANDLE)
    assert len(read_outbox()) == mailed
    assert list(database[db.RESET_PASSWORDS].find({"appId": app["appId"]})) == records

    for _ in range(ratelimit.FORGOT_PASSWORD_PER_HANDLE.events):
        assert forgot(api, app, "ghost@example.com").content == b"true"
    _assert_limited(forgot(api, app, "ghost@example.com"), ratelimit.FORGOT_PASSWORD_PER_HANDLE)


@pytest.mark.usefixtures("quick_forgot_password")
def test_forgot_password_limit_per_address(api, new_app, database):
    app = new_app()
    register_user(api, app, "last@example.com", "pw")
    for number in range(ratelimit.FORGOT_PASSWORD_PER_ADDRESS.events):
        assert forgot(api, app, f"someone{number}@example.com").content == b"true"
    mailed = len(read_outbox())

    _assert_limited(forgot(api, app, "last@example.com"), ratelimit.FORGOT_PASSWORD_PER_ADDRESS)
    assert len(read_outbox()) == mailed
    assert database[db.RESET_PASSWORDS].count_documents({"appId": app["appId"]}) == 0


def test_signup_limit_per_address(api, new_app, database):
    app = new_app()
    for number in range(ratelimit.SIGNUP_PER_ADDRESS.events):
        sign_up(api, app, f"new{number}@example.com")
    mailed = len(read_outbox())

    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        json={"handle": "one-more@example.com", "password": digest("pw")},
    )

    _assert_limited(response, ratelimit.SIGNUP_PER_ADDRESS)
    assert len(read_outbox()) == mailed
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"], "handle": "one-more@example.com"}) == 0


def test_exceeded_limit_is_logged(api, new_app, caplog):
    app = new_app()
    for _ in range(ratelimit.LOGIN_PER_HANDLE.events):
        login(api, app, "logged@example.com", "guess")

    with caplog.at_level("WARNING", logger="cosync.ratelimit"):
        _assert_limited(login(api, app, "logged@example.com", "guess"), ratelimit.LOGIN_PER_HANDLE)

    assert any(
        record.getMessage().startswith(f"rate limit login-handle reached for {app['appId']}:logged@example.com")
        for record in caplog.records
    )
