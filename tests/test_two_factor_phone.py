"""Phone (SMS) two-factor: setTwoFactorPhoneVerification, the SMS at login and loginComplete."""

from __future__ import annotations

import datetime

import jwt
import pytest

from cosync import db, ratelimit
from cosync.ratelimit import Limit
from flows import error, register_user
from two_factor_helpers import (
    code_in,
    complete,
    latest_sms_code,
    login,
    sms_texts,
    twilio,  # noqa: F401 (fixture)
    use_twilio,
    user_document,
    user_post,
    verified_phone_user,
)

HANDLE = "grace@example.com"
PHONE = "+14155550123"


@pytest.fixture
def phone_app(new_app):
    return new_app(twoFactorVerification="phone")


@pytest.fixture
def phone_user(api, phone_app) -> str:
    """A user with a verified phone and phone two-factor on; returns the access token."""
    access_token = verified_phone_user(api, phone_app, HANDLE, PHONE)
    response = user_post(api, access_token, "setTwoFactorPhoneVerification", json={"twoFactor": "true"})
    assert response.content == b"true"
    return access_token


def sms_login(api, app) -> str:
    response = login(api, app, HANDLE)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["login-token"]
    return response.json()["login-token"]


def test_enable_needs_verified_phone(api, phone_app):
    access_token = register_user(api, phone_app, HANDLE)["access-token"]
    response = user_post(api, access_token, "setTwoFactorPhoneVerification", json={"twoFactor": "true"})
    assert response.status_code == 400
    assert response.json() == error(410, "user does not have verified phone number")
    google_route = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert google_route.json() == error(410, "user does not have verified phone number")


def test_enable_and_disable_return_true(api, phone_app, phone_user):
    assert user_document(phone_app, HANDLE)["twoFactorPhoneVerification"] is True
    off = user_post(api, phone_user, "setTwoFactorPhoneVerification", data="twoFactor=false")
    assert off.status_code == 200
    assert off.content == b"true"
    assert user_document(phone_app, HANDLE)["twoFactorPhoneVerification"] is False
    assert sorted(login(api, phone_app, HANDLE).json()) == ["access-token", "jwt"]


def test_login_sends_sms_and_completes(api, phone_app, phone_user):
    before = len(sms_texts(PHONE))
    token = sms_login(api, phone_app)
    assert jwt.decode(token, options={"verify_signature": False})["method"] == "phone"
    texts = sms_texts(PHONE)
    assert len(texts) == before + 1
    response = complete(api, phone_app, token, code_in(texts[-1]))
    assert response.status_code == 200, response.text
    assert sorted(response.json()) == ["access-token", "jwt"]


def test_sms_code_stored_hashed(api, phone_app, phone_user):
    sms_login(api, phone_app)
    code = latest_sms_code(PHONE)
    stored = db.collection(db.SMS_CODES).find_one({"appId": phone_app["appId"], "handle": HANDLE, "purpose": "sms-login"})
    assert stored is not None
    assert code not in str(stored)
    assert stored["expiresAt"] - stored["createdAt"] == datetime.timedelta(minutes=10)


def test_sms_code_single_use(api, phone_app, phone_user):
    token = sms_login(api, phone_app)
    code = latest_sms_code(PHONE)
    assert complete(api, phone_app, token, code).status_code == 200
    again = complete(api, phone_app, sms_login(api, phone_app), code)
    assert again.json() == error(600, "invalid login credentials")


def test_new_login_replaces_sms_code(api, phone_app, phone_user):
    first = sms_login(api, phone_app)
    first_code = latest_sms_code(PHONE)
    second = sms_login(api, phone_app)
    assert complete(api, phone_app, first, first_code).json() == error(600, "invalid login credentials")
    assert complete(api, phone_app, second, latest_sms_code(PHONE)).status_code == 200


def test_wrong_sms_codes_kill_login(api, phone_app, phone_user):
    """W8: five wrong SMS codes end the login; the right code after them is refused."""
    token = sms_login(api, phone_app)
    right = latest_sms_code(PHONE)
    wrong = str(100000 + (int(right) - 100000 + 1) % 900000)
    for _ in range(5):
        assert complete(api, phone_app, token, wrong).json() == error(600, "invalid login credentials")
    assert complete(api, phone_app, token, right).json() == error(600, "invalid login credentials")


def test_expired_sms_code_rejected(api, phone_app, phone_user):
    token = sms_login(api, phone_app)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    db.collection(db.SMS_CODES).update_many({"appId": phone_app["appId"]}, {"$set": {"expiresAt": past}})
    assert complete(api, phone_app, token, latest_sms_code(PHONE)).json() == error(600, "invalid login credentials")


def test_sms_per_user_limit(api, phone_app, phone_user):
    """W8: SMS sending is limited per user (5 an hour, counting the setPhone SMS)."""
    sent_before = len(sms_texts(PHONE))
    for _ in range(ratelimit.SMS_PER_USER.events - 1):
        sms_login(api, phone_app)
    response = login(api, phone_app, HANDLE)
    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert int(response.headers["Retry-After"]) > 0
    assert len(sms_texts(PHONE)) == sent_before + ratelimit.SMS_PER_USER.events - 1


def test_login_sms_per_address_limit(api, phone_app, phone_user, monkeypatch):
    """W8: login SMS count against the client address's SMS budget too."""
    monkeypatch.setattr(ratelimit, "SMS_PER_ADDRESS", Limit("sms-address-login-test", 1, ratelimit.HOUR))
    sent_before = len(sms_texts(PHONE))
    sms_login(api, phone_app)
    response = login(api, phone_app, HANDLE)
    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert len(sms_texts(PHONE)) == sent_before + 1


def test_code_checks_per_address_limit(api, phone_app, phone_user, monkeypatch):
    monkeypatch.setattr(ratelimit, "CODE_CHECKS_PER_ADDRESS", Limit("code-address-test", 2, ratelimit.HOUR))
    token = sms_login(api, phone_app)
    for _ in range(2):
        assert complete(api, phone_app, token, "000000").json() == error(600, "invalid login credentials")
    limited = complete(api, phone_app, token, latest_sms_code(PHONE))
    assert limited.status_code == 429
    assert limited.json() == error(500, "internal server error")


def test_two_factor_checks_per_user_limit(api, phone_app, phone_user, monkeypatch):
    monkeypatch.setattr(ratelimit, "TWO_FACTOR_CHECKS_PER_USER", Limit("two-factor-user-test", 2, ratelimit.HOUR))
    token = sms_login(api, phone_app)
    for _ in range(2):
        assert complete(api, phone_app, token, "000000").json() == error(600, "invalid login credentials")
    assert complete(api, phone_app, token, latest_sms_code(PHONE)).status_code == 429


def test_login_sms_through_twilio(api, phone_app, phone_user, twilio):
    use_twilio(phone_app, twilio)
    outbox_before = len(sms_texts(PHONE))
    token = sms_login(api, phone_app)
    assert len(sms_texts(PHONE)) == outbox_before
    assert len(twilio.messages) == 1
    sent = twilio.messages[0]
    assert sent.to == PHONE
    assert sent.sender == "+15005550006"
    assert sent.body.endswith("verification code.")
    assert complete(api, phone_app, token, code_in(sent.body)).status_code == 200


def test_twilio_rejection_fails_login(api, phone_app, phone_user, twilio):
    use_twilio(phone_app, twilio)
    twilio.reject = {"code": 21211, "message": "The 'To' number is not a valid phone number."}
    response = login(api, phone_app, HANDLE)
    assert response.status_code == 400
    assert response.json() == error(500, "internal server error")
    assert db.collection(db.SMS_CODES).find_one({"appId": phone_app["appId"], "purpose": "sms-login"}) is None


def test_wrong_twilio_credentials_fail_login(api, phone_app, phone_user, twilio):
    use_twilio(phone_app, twilio)
    twilio.auth_token = "another-token"
    response = login(api, phone_app, HANDLE)
    assert response.json() == error(500, "internal server error")


def test_phone_factor_off_in_google_app(api, phone_app, phone_user):
    db.collection(db.APPS).update_one({"appId": phone_app["appId"]}, {"$set": {"twoFactorVerification": "google"}})
    assert sorted(login(api, phone_app, HANDLE).json()) == ["access-token", "jwt"]


def test_unverified_new_phone_keeps_two_factor(api, phone_app, phone_user):
    """setPhone of a new number does not unverify the current one, so 2FA stays on."""
    assert user_post(api, phone_user, "setPhone", json={"phone": "+14155550999"}).content == b"true"
    stored = user_document(phone_app, HANDLE)
    assert stored["phone"] == PHONE
    assert stored["phoneVerified"] is True
    assert list(login(api, phone_app, HANDLE).json()) == ["login-token"]


def test_sms_code_not_logged(api, phone_app, phone_user, caplog):
    """W18: our log lines carry neither the SMS code nor the full phone number."""
    caplog.set_level("DEBUG", logger="cosync")
    token = sms_login(api, phone_app)
    code = latest_sms_code(PHONE)
    assert complete(api, phone_app, token, code).status_code == 200
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("cosync"))
    assert "outbox file" in ours
    assert code not in ours
    assert PHONE not in ours
