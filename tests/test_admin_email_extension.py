"""POST /api/app/testEmailExtension through the real sendgrid client and a local SendGrid."""

from __future__ import annotations

import json

import pytest

from cosync.mail import read_outbox
from cosync.settings import get_settings
from flows import error
from sendgrid_fake import running_fake_sendgrid
from admin_helpers import audit_records, operator  # noqa: F401 (fixture)

APP_KEY = "SG.app-extension.key0123456789"
UNKNOWN_APP_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def sendgrid(monkeypatch):
    with running_fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_HOST", fake.url)
        get_settings.cache_clear()
        yield fake


@pytest.fixture
def extension_app(new_app, operator):
    app = new_app()
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "emailExtensionAPIKey",
                                                   "emailExtensionAPIKey": APP_KEY, "emailExtensionSenderEmail": "ops@example.com"})
    assert response.status_code == 200
    return app


def test_test_email_goes_through_app_key(operator, extension_app, sendgrid, database):
    response = operator.post("/testEmailExtension", {"appId": extension_app["appId"]})

    assert response.status_code == 200
    assert response.json() == {"sent": True, "provider": "sendgrid", "status": 202, "messageId": "test-message-id"}
    assert len(sendgrid.requests) == 1
    request = sendgrid.requests[0]
    assert request.headers["Authorization"] == f"Bearer {APP_KEY}"
    sent = request.json()
    assert sent["from"] == {"email": "ops@example.com", "name": extension_app["name"]}
    assert sent["personalizations"] == [{"to": [{"email": "ops@example.com"}]}]
    assert sent["subject"] == f"{extension_app['name']}: e-mail extension test"
    record = audit_records(database, extension_app["appId"], "testExtensionService")[-1]
    assert record["status"] == "success"
    assert record["value"] == {"provider": "sendgrid", "providerStatus": 202}
    assert APP_KEY not in json.dumps(record, default=str)


def test_test_email_to_other_recipient(operator, extension_app, sendgrid):
    response = operator.post("/testEmailExtension", {"appId": extension_app["appId"], "to": "me@example.org"})

    assert response.status_code == 200
    assert sendgrid.requests[0].json()["personalizations"] == [{"to": [{"email": "me@example.org"}]}]


def test_test_email_reports_provider_rejection(operator, extension_app, sendgrid, database):
    sendgrid.status = 401
    sendgrid.body = json.dumps({"errors": [{"message": "The provided authorization grant is invalid", "field": None, "help": None}]}).encode()

    response = operator.post("/testEmailExtension", {"appId": extension_app["appId"]})

    assert response.status_code == 502
    assert response.json() == {
        "code": 703,
        "message": "e-mail provider did not accept the message",
        "sent": False,
        "provider": "sendgrid",
        "status": 401,
        "reason": "SendGrid rejected the message: HTTP 401: The provided authorization grant is invalid",
        "providerError": {"message": "The provided authorization grant is invalid", "field": None, "help": None},
    }
    record = audit_records(database, extension_app["appId"], "testExtensionService")[-1]
    assert record["status"] == "error"
    assert record["value"] == {"provider": "sendgrid", "providerStatus": 401, "code": 703}


def test_test_email_without_key_uses_outbox(operator, new_app):
    app = new_app()

    response = operator.post("/testEmailExtension", {"appId": app["appId"], "to": "dev@example.com"})

    assert response.status_code == 200
    body = response.json()
    assert body["sent"] is True
    assert body["provider"] == "outbox"
    assert body["status"] is None
    assert body["messageId"].endswith(".json")
    message = [item for item in read_outbox() if item["to"] == "dev@example.com"][-1]
    assert message["subject"] == f"{app['name']}: e-mail extension test"


def test_test_email_errors(operator, new_app):
    missing = operator.post("/testEmailExtension", {})
    assert missing.status_code == 400
    assert missing.json() == error(403, "missing parameter")
    unknown = operator.post("/testEmailExtension", {"appId": UNKNOWN_APP_ID})
    assert unknown.json() == error(401, "app no longer exist")
    bad_recipient = operator.post("/testEmailExtension", {"appId": new_app()["appId"], "to": "nobody"})
    assert bad_recipient.json() == error(602, "invalid data")


def test_test_email_with_key_needs_sender(operator, new_app, sendgrid):
    app = new_app()
    operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "emailExtensionAPIKey", "emailExtensionAPIKey": APP_KEY})

    response = operator.post("/testEmailExtension", {"appId": app["appId"]})

    assert response.status_code == 400
    assert response.json() == error(403, "missing parameter")
    assert sendgrid.requests == []
