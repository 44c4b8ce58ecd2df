"""Sign-up flow `link`: the e-mailed link (GET /api/appuser/completeSignup), its confirmation
page and the posted confirmation; and the legacy `signed-user-token`."""

from __future__ import annotations

import base64
import datetime
import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from cosync import db
from cosync.mail import read_outbox
from flows import attempts_used, digest, error, register_user, sign_up
from password_flows import login


def _signup(api, app, handle, password="pw", **extra):
    body = {"handle": handle, "password": digest(password), **extra}
    return api.post("/api/appuser/signup", headers={"app-token": app["appToken"]}, json=body)


def _link(handle):
    """Return the path and query of the newest sign-up link mailed to `handle`."""
    links = [
        re.search(r'href="([^"]+)"', message["html"]) for message in read_outbox() if message["to"] == handle
    ]
    links = [link for link in links if link]
    assert links, f"no message with a link to {handle} in the outbox"
    parts = urlsplit(html.unescape(links[-1].group(1)))
    return f"{parts.path}?{parts.query}"


def _form(page_html):
    """Return the form's action and its hidden fields from a confirmation page."""
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)">', page_html).group(1))
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page_html)
    }
    return action, fields


def _confirm(api, handle):
    page = api.get(_link(handle))
    action, fields = _form(page.text)
    return api.post(action, data=fields)


def _users(database, app):
    return database[db.USERS].count_documents({"appId": app["appId"]})


@pytest.fixture
def link_app(new_app):
    return new_app(signupFlow="link")


def test_link_signup_emails_completion_link(api, link_app, database):
    response = _signup(api, link_app, "Ada+Tag@Example.com")

    assert response.status_code == 200
    assert response.content == b"true"
    message = read_outbox()[-1]
    assert message["to"] == "ada+tag@example.com"
    assert message["subject"] == f"Confirm your account for {link_app['name']}"
    link = _link("ada+tag@example.com")
    assert link.startswith("/api/appuser/completeSignup?")
    query = parse_qs(urlsplit(link).query)
    assert query["appToken"] == [link_app["appToken"]]
    assert query["handle"] == ["ada+tag@example.com"]
    assert re.fullmatch(r"[0-9]{6}", query["code"][0])
    assert "%2B" in link
    assert f"Confirm my account: http://127.0.0.1:7071{link}" in message["text"]
    assert _users(database, link_app) == 0


def test_link_get_shows_page_and_changes_nothing(api, link_app, database):
    """W28: opening the link only shows a page; a mail scanner that fetches it creates nothing."""
    _signup(api, link_app, "scan@example.com")

    for _ in range(7):
        page = api.get(_link("scan@example.com"))
        assert page.status_code == 200

    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<title>Confirm your account</title>" in page.text
    assert "scan@example.com" in page.text
    assert "http" not in page.text.replace(link_app["appToken"], "")
    action, fields = _form(page.text)
    assert action == f"/api/appuser/completeSignup/confirm?appToken={link_app['appToken']}"
    assert fields["handle"] == "scan@example.com"
    assert fields["code"] == parse_qs(urlsplit(_link("scan@example.com")).query)["code"][0]
    assert _users(database, link_app) == 0
    assert attempts_used(link_app, "scan@example.com") == 0


def test_link_confirmation_completes_signup(api, link_app, database):
    _signup(api, link_app, "confirm@example.com", "my password")

    response = _confirm(api, "confirm@example.com")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Your account is confirmed</title>" in response.text
    assert "<p>Your account is confirmed.</p>" in response.text
    assert f"You can now log in to {link_app['name']}." in response.text
    assert _users(database, link_app) == 1
    assert login(api, link_app, "confirm@example.com", "my password").status_code == 200
    assert read_outbox()[-1]["subject"] == f"Welcome to {link_app['name']}"


def test_link_used_twice(api, link_app):
    _signup(api, link_app, "twice@example.com")
    assert _confirm(api, "twice@example.com").status_code == 200

    again = _confirm(api, "twice@example.com")

    assert again.status_code == 400
    assert "<title>This link was already used</title>" in again.text


def test_link_expired(api, link_app, database):
    _signup(api, link_app, "late@example.com")
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    database[db.SIGNUP_CODES].update_many({"appId": link_app["appId"]}, {"$set": {"expiresAt": past}})

    response = _confirm(api, "late@example.com")

    assert response.status_code == 400
    assert "<title>This link has expired</title>" in response.text
    assert _users(database, link_app) == 0


def test_link_wrong_code(api, link_app, database):
    _signup(api, link_app, "wrong@example.com")
    action, fields = _form(api.get(_link("wrong@example.com")).text)
    fields["code"] = "100000" if fields["code"] != "100000" else "100001"

    response = api.post(action, data=fields)

    assert response.status_code == 400
    assert "<title>This link is not valid</title>" in response.text
    assert _users(database, link_app) == 0
    assert attempts_used(link_app, "wrong@example.com") == 1


def test_link_malformed(api, link_app):
    _signup(api, link_app, "bad@example.com")
    query = parse_qs(urlsplit(_link("bad@example.com")).query)
    token, code = query["appToken"][0], query["code"][0]
    url = "/api/appuser/completeSignup"

    cases = [
        ({"appToken": token, "code": code}, 400),
        ({"appToken": token, "handle": "bad@example.com"}, 400),
        ({"appToken": token, "handle": "bad@example.com", "code": "12ab"}, 400),
        ({"handle": "bad@example.com", "code": code}, 403),
        ({"appToken": "not-a-token", "handle": "bad@example.com", "code": code}, 403),
        ({"appToken": link_app["appToken"] + "x", "handle": "bad@example.com", "code": code}, 403),
    ]
    for params, status in cases:
        page = api.get(url, params=params)
        assert page.status_code == status, params
        assert "<title>This link is not valid</title>" in page.text, params
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"


def test_link_with_access_token_is_refused(api, link_app):
    """The link must carry an app token; a user's access token is not one."""
    _signup(api, link_app, "first@example.com")
    session = _confirm_and_login(api, link_app, "first@example.com")
    _signup(api, link_app, "second@example.com")
    query = parse_qs(urlsplit(_link("second@example.com")).query)

    page = api.get(
        "/api/appuser/completeSignup",
        params={"appToken": session["access-token"], "handle": "second@example.com", "code": query["code"][0]},
    )

    assert page.status_code == 403
    assert "<title>This link is not valid</title>" in page.text


def _confirm_and_login(api, app, handle):
    assert _confirm(api, handle).status_code == 200
    return login(api, app, handle, "pw").json()


@pytest.mark.parametrize(
    "change, title",
    [
        ({"signupEnabled": False}, "Sign-up is not available"),
        ({"status": "inactive"}, "Sign-up is not available"),
        ({"status": "migrated"}, "Sign-up is not available"),
    ],
)
def test_link_app_unavailable(api, link_app, database, change, title):
    _signup(api, link_app, "closed@example.com")
    page = api.get(_link("closed@example.com"))
    database[db.APPS].update_one({"appId": link_app["appId"]}, {"$set": change})

    again = api.get(_link("closed@example.com"))
    action, fields = _form(page.text)
    posted = api.post(action, data=fields)

    for response in (again, posted):
        assert response.status_code == 400
        assert f"<title>{title}</title>" in response.text
    assert _users(database, link_app) == 0


def test_link_pages_escape_values(api, new_app, database):
    """W24: the handle and app name are HTML-escaped on every page."""
    app = new_app(signupFlow="link")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"name": "<i>Shop</i>"}})
    handle = "<b>x</b>'\"&@example.com"
    assert _signup(api, app, handle).content == b"true"

    page = api.get(_link(handle))
    done = _confirm(api, handle)

    for response in (page, done):
        assert "<b>x</b>" not in response.text
        assert "&lt;b&gt;x&lt;/b&gt;" in response.text
        assert "<i>Shop</i>" not in response.text
    assert _form(page.text)[1]["handle"] == handle


def test_link_resignup_never_replaces_password(api, link_app, database):
    """W9: a second sign-up with another password cannot set the password of the first."""
    _signup(api, link_app, "victim@example.com", "owner password")
    owner_link = _link("victim@example.com")
    _signup(api, link_app, "victim@example.com", "attacker password")

    action, fields = _form(api.get(owner_link).text)
    assert api.post(action, data=fields).status_code == 200

    assert login(api, link_app, "victim@example.com", "attacker password").json() == error(600, "invalid login credentials")
    assert login(api, link_app, "victim@example.com", "owner password").json() == error(600, "invalid login credentials")
    user = database[db.USERS].find_one({"appId": link_app["appId"], "handle": "victim@example.com"})
    assert user["password"] == ""


def test_link_confirmation_ignores_owner(api, link_app):
    """W1: an `owner` field in the confirmation never sets the access-token scope."""
    _signup(api, link_app, "owner@example.com")
    action, fields = _form(api.get(_link("owner@example.com")).text)

    posted = api.post(action + "&owner=server", data={**fields, "owner": "server"})

    assert posted.status_code == 200
    session = login(api, link_app, "owner@example.com", "pw").json()
    assert jwt.decode(session["access-token"], options={"verify_signature": False})["scope"] == "user"


def test_other_flow_values_send_link(api, new_app):
    """CosyncJWT treats any flow other than `none` and `code` as `link`."""
    app = new_app(signupFlow="email-link")
    assert _signup(api, app, "other@example.com").content == b"true"
    assert _link("other@example.com").startswith("/api/appuser/completeSignup?")


def _public_pem(app):
    return base64.b64decode(app["appPublicKey"])


def test_complete_signup_returns_signed_user_token(api, new_app):
    """Swift builds before 2023-10-29 require `signed-user-token` from completeSignup."""
    fields = [{"id": "1", "path": "user_data.name", "fieldName": "name", "required": True, "canEdit": True}]
    app = new_app(signupFlow="link", metaData=fields)
    _signup(api, app, "legacy@example.com", metaData=json.dumps({"user_data": {"name": "Ada"}}))
    query = parse_qs(urlsplit(_link("legacy@example.com")).query)
    code = query["code"][0]

    response = api.post(
        "/api/appuser/completeSignup",
        headers={"app-token": app["appToken"]},
        data=f"handle=legacy@example.com&code={code}",
    )

    body = response.json()
    assert set(body) == {"jwt", "access-token", "signed-user-token"}
    claims = jwt.decode(body["signed-user-token"], _public_pem(app), algorithms=["RS256"])
    assert claims["handle"] == "legacy@example.com"
    assert claims["appId"] == app["appId"]
    assert claims["code"] == int(code)
    assert json.loads(claims["metaData"]) == {"user_data": {"name": "Ada"}}
    assert claims["metaData"].startswith('{\n          "user_data": {')
    assert "senderHandle" not in claims


def test_signup_flow_none_returns_signed_user_token(api, new_app):
    app = new_app(signupFlow="none")

    body = _signup(api, app, "now@example.com").json()

    claims = jwt.decode(body["signed-user-token"], _public_pem(app), algorithms=["RS256"])
    assert claims["handle"] == "now@example.com"
    assert claims["code"] == body["code"]
    assert claims["metaData"] == ""


def test_complete_signup_js_access_token(api, new_app):
    """The JS SDK sends only its session's access token on app routes, completeSignup included."""
    app = new_app()
    session = register_user(api, app, "first-js@example.com")
    code = sign_up(api, app, "second-js@example.com")

    response = api.post(
        "/api/appuser/completeSignup",
        headers={"access-token": session["access-token"]},
        json={"handle": "second-js@example.com", "code": code},
    )

    assert set(response.json()) == {"jwt", "access-token", "signed-user-token"}


def test_link_in_cosyncjwt_format(api, link_app):
    """CosyncJWT's links encode only `+` (as `%2B`); such a link opens the same page."""
    _signup(api, link_app, "ada+old@example.com")
    code = parse_qs(urlsplit(_link("ada+old@example.com")).query)["code"][0]

    page = api.get(
        f"/api/appuser/completeSignup?appToken={link_app['appToken']}&handle=ada%2Bold@example.com&code={code}"
    )

    assert page.status_code == 200
    action, fields = _form(page.text)
    assert fields == {"handle": "ada+old@example.com", "code": code}
    assert api.post(action, data=fields).status_code == 200
