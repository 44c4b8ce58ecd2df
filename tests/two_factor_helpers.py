"""Helpers for the two-factor, phone and profile tests: SMS outbox codes, TOTP codes, a fake
Twilio account, and users with a verified phone."""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

import pytest

from cosync import db, totp
from cosync.crypto import encrypt_field
from cosync.secrets import get_secrets
from cosync.settings import get_settings
from cosync.sms import read_sms_outbox
from flows import digest, register_user
from twilio_fake import FakeTwilio, running_fake_twilio

PASSWORD = "correct horse"


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """A fake Twilio API on 127.0.0.1 that the real `twilio` client is pointed at."""
    with running_fake_twilio() as fake:
        monkeypatch.setenv("TWILIO_API_BASE_URL", fake.url)
        get_settings.cache_clear()
        yield fake


def use_twilio(app: dict[str, Any], fake: FakeTwilio, sender: str = "+15005550006") -> None:
    """Store the fake's credentials in the app, encrypted as the operator routes store them."""
    secret = get_secrets().encryption_key
    values = {"TWILIOAccountSid": fake.account_sid, "TWILIOToken": fake.auth_token, "TWILIOPhoneNumber": sender}
    sealed = {name: encrypt_field(secret, value, f"apps.{name}:{app['appId']}") for name, value in values.items()}
    db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": sealed})


def sms_texts(phone: str) -> list[str]:
    return [message["text"] for message in read_sms_outbox() if message["to"] == phone]


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, f"no six-digit code in {text!r}"
    return match.group(1)


def latest_sms_code(phone: str) -> str:
    texts = sms_texts(phone)
    assert texts, f"no SMS to {phone} in the outbox"
    return code_in(texts[-1])


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return totp.code_at(totp.secret_key(secret), totp.current_step(time.time()) + offset_steps)


def login(api: Any, app: dict[str, Any], handle: str, password: str = PASSWORD) -> Any:
    return api.post(
        "/api/appuser/login", headers={"app-token": app["appToken"]}, json={"handle": handle, "password": digest(password)}
    )


def complete(api: Any, app: dict[str, Any], login_token: str, code: Any) -> Any:
    return api.post(
        "/api/appuser/loginComplete", headers={"app-token": app["appToken"]}, json={"loginToken": login_token, "code": code}
    )


def user_post(api: Any, access_token: str, route: str, **kwargs: Any) -> Any:
    return api.post(f"/api/appuser/{route}", headers={"access-token": access_token}, **kwargs)


def user_document(app: dict[str, Any], handle: str) -> dict[str, Any]:
    return db.collection(db.USERS).find_one({"appId": app["appId"], "handle": handle})


def verified_phone_user(api: Any, app: dict[str, Any], handle: str, phone: str) -> str:
    """Register `handle`, verify `phone` for it through setPhone and verifyPhone; return its access token."""
    access_token = register_user(api, app, handle, PASSWORD)["access-token"]
    assert user_post(api, access_token, "setPhone", json={"phone": phone}).content == b"true"
    response = user_post(api, access_token, "verifyPhone", json={"code": latest_sms_code(phone)})
    assert response.content == b"true", response.text
    return access_token


def enable_google(api: Any, access_token: str) -> str:
    """Turn Google two-factor on for the user; return the secret."""
    response = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert response.status_code == 200, response.text
    return response.json()["googleSecretKey"]
