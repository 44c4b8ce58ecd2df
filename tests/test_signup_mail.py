"""Sign-up mail through the real SendGrid client: the server's key, an app's own key, and Key
Vault deployments without a key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sendgrid_fake import running_fake_sendgrid

from cosync import db, secrets
from cosync.crypto import encrypt_field
from cosync.mail import read_outbox
from cosync.settings import get_settings
from flows import digest, error

SERVER_KEY = "SG.server-key.0123456789"
APP_KEY = "SG.app-key.9876543210"


@pytest.fixture
def sendgrid(monkeypatch, environment):
    with running_fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_HOST", fake.url)
        monkeypatch.setenv("NOREPLY_EMAIL", "accounts@service.example")
        get_settings.cache_clear()
        yield fake


def _signup(api, app, handle):
    return api.post(
        "/api/appuser/signup", headers={"app-token": app["appToken"]}, json={"handle": handle, "password": digest("pw")}
    )


def _store_server_key(monkeypatch, environment, tmp_path, value):
    directory = tmp_path / "secrets"
    directory.mkdir()
    source = secrets.LocalSource(Path(environment["LOCAL_SECRETS_DIR"]))
    for name in secrets.REQUIRED_SECRETS:
        (directory / name).write_text(source.get(name))
    if value is not None:
        (directory / secrets.SENDGRID_API_KEY).write_text(value)
    monkeypatch.setenv("LOCAL_SECRETS_DIR", str(directory))
    get_settings.cache_clear()
    secrets.use_source(None)


def test_signup_code_goes_through_sendgrid(api, new_app, sendgrid, monkeypatch, environment, tmp_path):
    app = new_app()
    _store_server_key(monkeypatch, environment, tmp_path, SERVER_KEY)
    outbox_before = len(read_outbox())

    response = _signup(api, app, "mailed@example.com")

    assert response.content == b"true"
    assert len(sendgrid.requests) == 1
    request = sendgrid.requests[0]
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {SERVER_KEY}"
    payload = request.json()
    assert payload["from"] == {"email": "accounts@service.example", "name": app["name"]}
    assert payload["personalizations"][0]["to"] == [{"email": "mailed@example.com"}]
    assert payload["subject"] == f"Confirm your e-mail address for {app['name']}"
    html = next(part["value"] for part in payload["content"] if part["type"] == "text/html")
    code = re.search(r"<strong>(\d{6})</strong>", html).group(1)
    assert len(read_outbox()) == outbox_before

    completed = api.post(
        "/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json={"handle": "mailed@example.com", "code": code}
    )
    assert completed.status_code == 200


def test_app_email_extension_uses_app_key(api, new_app, sendgrid, environment):
    app = new_app()
    secret = secrets.get_secrets().encryption_key
    sealed = encrypt_field(secret, APP_KEY, f"apps.emailExtensionAPIKey:{app['appId']}")
    db.collection(db.APPS).update_one(
        {"appId": app["appId"]},
        {"$set": {"emailExtension": True, "emailExtensionAPIKey": sealed, "emailExtensionSenderEmail": "hello@app.example"}},
    )

    assert _signup(api, app, "extension@example.com").content == b"true"

    request = sendgrid.requests[0]
    assert request.headers["Authorization"] == f"Bearer {APP_KEY}"
    assert request.json()["from"] == {"email": "hello@app.example", "name": app["name"]}


def test_sendgrid_rejection_answers_500(api, new_app, sendgrid, monkeypatch, environment, tmp_path, database):
    app = new_app()
    _store_server_key(monkeypatch, environment, tmp_path, SERVER_KEY)
    sendgrid.status = 401
    sendgrid.body = b'{"errors":[{"message":"The provided authorization grant is invalid"}]}'

    response = _signup(api, app, "rejected@example.com")

    assert response.status_code == 400
    assert response.json() == error(500, "internal server error")


def test_key_vault_deployment_without_sendgrid_key_fails_clearly(api, new_app, monkeypatch, environment, caplog):
    app = new_app()
    # Only the setting matters here: the secrets keep coming from the local source below.
    monkeypatch.setenv("KEY_VAULT_URL", "https://example-vault.vault.azure.net")
    get_settings.cache_clear()
    secrets.use_source(secrets.LocalSource(Path(environment["LOCAL_SECRETS_DIR"])))
    outbox_before = len(read_outbox())

    with caplog.at_level("INFO", logger="cosync.http"):
        response = _signup(api, app, "nokey@example.com")

    assert response.json() == error(500, "internal server error")
    assert len(read_outbox()) == outbox_before
    assert any("no SendGrid API key: store secret 'sendgrid-api-key' in the Key Vault" in record.getMessage() for record in caplog.records)
