"""Operator invitation routes: POST /api/app/createAppInvite, /resendAppInvite,
/removeAppInvite and GET /api/app/searchInvite, authorised by the server secret."""

from __future__ import annotations

import json

import pytest
from sendgrid_fake import running_fake_sendgrid

from cosync import db
from cosync.crypto import encrypt_field
from cosync.mail import read_outbox
from cosync.secrets import get_secrets
from cosync.settings import get_settings
from flows import digest, error, latest_code, register_user

ADMIN_REFUSED = error(400, "invalid admin token")


def _post(api, secret, route, **body):
    return api.post(f"/api/app/{route}", headers={"server-secret": secret}, json=body)


def _search(api, secret, **params):
    return api.get("/api/app/searchInvite", headers={"server-secret": secret}, params=params)


def _register(api, app, handle, code):
    return api.post(
        "/api/appuser/register",
        headers={"app-token": app["appToken"]},
        json={"handle": handle, "password": digest("pw"), "code": code},
    )


def test_create_app_invite_mails_each_address(api, new_app, server_secret, database):
    app = new_app()
    response = _post(api, server_secret, "createAppInvite", appId=app["appId"],
                     handle=" Ann@Example.com, bob@example.com ,ANN@example.com", locale="en")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"invites", "exists", "failed"}
    assert body["exists"] == []
    assert body["failed"] == []
    assert [item["handle"] for item in body["invites"]] == ["ann@example.com", "bob@example.com"]
    first = body["invites"][0]
    assert set(first) == {
        "_id", "handle", "appId", "senderHandle", "senderUserId", "status", "metaData", "locale",
        "createdAt", "updatedAt", "expiresAt",
    }
    assert first["senderHandle"] == first["senderUserId"] == "superuser"
    assert first["status"] == "pending"
    assert first["locale"] == "EN"
    code = latest_code("ann@example.com")
    assert code not in response.text
    assert code not in json.dumps(list(database[db.INVITES].find({"appId": app["appId"]})), default=str)
    assert _register(api, app, "ann@example.com", code).status_code == 200


def test_create_app_invite_skips_accounts_and_live_invites(api, new_app, server_secret):
    app = new_app()
    register_user(api, app, "member@example.com")
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="pending@example.com").status_code == 200
    response = _post(api, server_secret, "createAppInvite", appId=app["appId"],
                     handle=["Member@example.com", "pending@example.com", "fresh@example.com"])
    body = response.json()
    assert body["exists"] == ["member@example.com", "pending@example.com"]
    assert [item["handle"] for item in body["invites"]] == ["fresh@example.com"]


def test_create_app_invite_rejects_bad_requests(api, new_app, server_secret, database):
    """Admin W30: addresses are validated, and apps without invitations are refused."""
    app = new_app()
    assert _post(api, server_secret, "createAppInvite", handle="a@example.com").json() == error(403, "missing parameter")
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"]).json() == error(403, "missing parameter")
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle=" , ").json() == error(
        403, "missing parameter"
    )
    bad_address = _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="ok@example.com, not-mail")
    assert bad_address.json() == error(602, "invalid data")
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle=[1]).json() == error(602, "invalid data")
    too_many = ",".join(f"u{number}@example.com" for number in range(101))
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle=too_many).json() == error(
        602, "invalid data"
    )
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="a@example.com",
                 locale="XX").json() == error(602, "invalid data")
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0

    assert _post(api, server_secret, "createAppInvite", appId="no-such-app", handle="a@example.com").json() == error(
        401, "app no longer exist"
    )
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"invitationEnabled": False}})
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="a@example.com").json() == error(
        406, "app does not support invitaion"
    )
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"status": "inactive"}})
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="a@example.com").json() == error(
        402, "app is suspended"
    )


def test_create_app_invite_reports_failed_mail(api, new_app, server_secret, database, monkeypatch):
    """Admin W30: an address whose mail the provider refused is reported and stores no invite."""
    app = new_app()
    with running_fake_sendgrid() as sendgrid:
        sendgrid.status = 500
        monkeypatch.setenv("SENDGRID_API_HOST", sendgrid.url)
        get_settings.cache_clear()
        sealed = encrypt_field(get_secrets().encryption_key, "SG.app-key", f"apps.emailExtensionAPIKey:{app['appId']}")
        database[db.APPS].update_one(
            {"appId": app["appId"]}, {"$set": {"emailExtension": True, "emailExtensionAPIKey": sealed}}
        )
        response = _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="fail@example.com")
    assert response.status_code == 200
    assert response.json() == {"invites": [], "exists": [], "failed": ["fail@example.com"]}
    assert len(sendgrid.requests) == 1
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0


def test_resend_app_invite_replaces_code(api, new_app, server_secret):
    app = new_app()
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="again@example.com").status_code == 200
    first = latest_code("again@example.com")
    count = len(read_outbox())
    response = _post(api, server_secret, "resendAppInvite", appId=app["appId"], handle="Again@example.com")
    assert response.status_code == 200
    assert response.content == b"true"
    assert len(read_outbox()) == count + 1
    second = latest_code("again@example.com")
    if first != second:
        assert _register(api, app, "again@example.com", first).json() == error(602, "invalid data")
    assert _register(api, app, "again@example.com", second).status_code == 200


def test_resend_app_invite_errors(api, new_app, server_secret, database):
    app = new_app()
    assert _post(api, server_secret, "resendAppInvite", appId=app["appId"]).json() == error(403, "missing parameter")
    assert _post(api, server_secret, "resendAppInvite", handle="x@example.com").json() == error(403, "missing parameter")
    assert _post(api, server_secret, "resendAppInvite", appId=app["appId"], handle="none@example.com").json() == error(
        602, "invalid data"
    )
    assert _post(api, server_secret, "resendAppInvite", appId="no-such-app", handle="x@example.com").json() == error(
        401, "app no longer exist"
    )


def test_remove_app_invite(api, new_app, server_secret, database):
    app = new_app()
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle="gone@example.com").status_code == 200
    code = latest_code("gone@example.com")
    response = _post(api, server_secret, "removeAppInvite", appId=app["appId"], handle="GONE@example.com")
    assert response.status_code == 200
    body = response.json()
    assert body["handle"] == "gone@example.com"
    assert "codeHash" not in body
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0
    assert _register(api, app, "gone@example.com", code).json() == error(602, "invalid data")
    again = _post(api, server_secret, "removeAppInvite", appId=app["appId"], handle="gone@example.com")
    assert again.json() == error(602, "invalid data")
    assert _post(api, server_secret, "removeAppInvite", appId=app["appId"]).json() == error(403, "missing parameter")
    assert _post(api, server_secret, "removeAppInvite", appId="no-such-app", handle="gone@example.com").json() == error(
        401, "app no longer exist"
    )


def test_search_invite_matches_literally(api, new_app, server_secret):
    """Admin W8: search text is escaped, so regular-expression metacharacters match themselves."""
    app = new_app()
    other = new_app()
    handles = "a+b@example.com, axb@example.com, dot.name@example.com, dotxname@example.com"
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle=handles).status_code == 200
    assert _post(api, server_secret, "createAppInvite", appId=other["appId"], handle="a+b@example.com").status_code == 200

    def found(value):
        response = _search(api, server_secret, appId=app["appId"], value=value)
        assert response.status_code == 200, response.text
        return [item["handle"] for item in response.json()]

    assert found("A+B") == ["a+b@example.com"]
    assert found("dot.name") == ["dot.name@example.com"]
    assert found(".*") == []
    assert found("(") == []
    assert found("[") == []
    assert found("(a+)+$") == []
    assert found("example") == ["a+b@example.com", "axb@example.com", "dot.name@example.com", "dotxname@example.com"]
    result = _search(api, server_secret, appId=app["appId"], value="a+b").json()
    assert all(item["appId"] == app["appId"] for item in result)
    assert all("codeHash" not in item and "code" not in item for item in result)


def test_search_invite_pages(api, new_app, server_secret):
    app = new_app()
    handles = ",".join(f"page{number}@example.com" for number in range(5))
    assert _post(api, server_secret, "createAppInvite", appId=app["appId"], handle=handles).status_code == 200

    def page(number, limit):
        response = _search(api, server_secret, appId=app["appId"], value="page", page=number, limit=limit)
        return [item["handle"] for item in response.json()]

    assert page(1, 2) == ["page0@example.com", "page1@example.com"]
    assert page(3, 2) == ["page4@example.com"]
    assert page(4, 2) == []
    for bad in ({"page": 0}, {"limit": 0}, {"limit": 201}, {"page": "x"}):
        response = _search(api, server_secret, appId=app["appId"], value="page", **bad)
        assert response.json() == error(602, "invalid data")
    assert _search(api, server_secret, appId=app["appId"]).json() == error(403, "missing parameter")
    assert _search(api, server_secret, value="x").json() == error(403, "missing parameter")
    assert _search(api, server_secret, appId="no-such-app", value="x").json() == error(401, "app no longer exist")


@pytest.mark.parametrize("route", ["createAppInvite", "resendAppInvite", "removeAppInvite", "searchInvite"])
def test_invite_routes_need_server_secret(api, new_app, route, database):
    app = new_app()
    session = register_user(api, app, f"{route.lower()}@example.com")
    body = {"appId": app["appId"], "handle": "x@example.com"}
    attempts = [
        {},
        {"server-secret": "not-a-token"},
        {"server-secret": app["appToken"]},
        {"server-secret": session["access-token"]},
        {"app-token": app["appToken"]},
        {"access-token": session["access-token"]},
    ]
    for headers in attempts:
        if route == "searchInvite":
            response = api.get("/api/app/searchInvite", headers=headers, params={"appId": app["appId"], "value": "x"})
        else:
            response = api.post(f"/api/app/{route}", headers=headers, json=body)
        assert response.status_code == (401 if "server-secret" in headers else 403), headers
        assert response.json() == ADMIN_REFUSED
    assert database[db.INVITES].count_documents({"appId": app["appId"]}) == 0
