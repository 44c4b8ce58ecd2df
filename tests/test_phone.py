"""Phone numbers: setPhone, verifyPhone and the operator's testAppTwilio."""

from __future__ import annotations

import pytest

from cosync import db, ratelimit
from cosync.ratelimit import Limit
from cosync.services.phone import normalise_phone
from cosync.errors import ApiError
from flows import error, register_user
from two_factor_helpers import (
    latest_sms_code,
    sms_texts,
    twilio,  # noqa: F401 (fixture)
    use_twilio,
    user_document,
    user_post,
    verified_phone_user,
)

HANDLE = "linus@example.com"
PHONE = "+14155550177"


@pytest.fixture
def phone_app(new_app):
    return new_app(twoFactorVerification="phone")


@pytest.fixture
def access_token(api, phone_app) -> str:
    return register_user(api, phone_app, HANDLE)["access-token"]


def test_set_and_verify_phone(api, phone_app, access_token):
    response = user_post(api, access_token, "setPhone", json={"phone": PHONE})
    assert response.status_code == 200
    assert response.content == b"true"
    assert "phone" not in user_document(phone_app, HANDLE)
    verify = user_post(api, access_token, "verifyPhone", json={"code": latest_sms_code(PHONE)})
    assert verify.status_code == 200
    assert verify.content == b"true"
    user = api.get("/api/appuser/getUser", headers={"access-token": access_token}).json()
    assert user["phone"] == PHONE
    assert user["phoneVerified"] is True


def test_swift_form_phone_plus_as_space(api, phone_app, access_token):
    """The Swift SDK's unencoded form body turns the leading `+` into a space."""
    response = user_post(api, access_token, "setPhone", data="phone=+1 415 555 0177")
    assert response.content == b"true"
    verify = user_post(api, access_token, "verifyPhone", data=f"code={latest_sms_code(PHONE)}")
    assert verify.content == b"true"
    assert user_document(phone_app, HANDLE)["phone"] == PHONE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+14155550177", PHONE), (" 14155550177", PHONE), ("+1 (415) 555-0177", PHONE), ("+44 20 7946 0958", "+442079460958")],
)
def test_normalise_phone(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["14155550177", "+0123456789", "+1415", "+1234567890123456", "+1415abc0177", "++14155550177"])
def test_normalise_phone_rejects(raw):
    with pytest.raises(ApiError) as raised:
        normalise_phone(raw)
    assert raised.value.error.code == 602


def test_set_phone_errors(api, new_app, phone_app, access_token):
    missing = user_post(api, access_token, "setPhone", json={})
    assert missing.json() == error(403, "missing parameter")
    invalid = user_post(api, access_token, "setPhone", json={"phone": "call me"})
    assert invalid.json() == error(602, "invalid data")
    not_string = user_post(api, access_token, "setPhone", json={"phone": 14155550177})
    assert not_string.json() == error(602, "invalid data")
    no_user = api.post("/api/appuser/setPhone", headers={"app-token": phone_app["appToken"]}, json={"phone": PHONE})
    assert no_user.json() == error(602, "invalid data")
    other = new_app()
    other_token = register_user(api, other, HANDLE)["access-token"]
    not_phone = user_post(api, other_token, "setPhone", json={"phone": PHONE})
    assert not_phone.json() == error(409, "app does not support phone two-factor verification")


def test_set_phone_in_use(api, phone_app, access_token):
    verified_phone_user(api, phone_app, "other@example.com", PHONE)
    response = user_post(api, access_token, "setPhone", json={"phone": PHONE})
    assert response.status_code == 400
    assert response.json() == error(412, "phone number already in use")


def test_verify_phone_in_use_meanwhile(api, phone_app, access_token):
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    code = latest_sms_code(PHONE)
    verified_phone_user(api, phone_app, "other@example.com", PHONE)
    response = user_post(api, access_token, "verifyPhone", json={"code": code})
    assert response.json() == error(412, "phone number already in use")
    assert "phone" not in user_document(phone_app, HANDLE)


def test_set_phone_rejects_suspended_user_and_app(api, phone_app, access_token):
    db.collection(db.USERS).update_one({"appId": phone_app["appId"], "handle": HANDLE}, {"$set": {"status": "suspended"}})
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).json() == error(404, "user account is suspended")
    db.collection(db.APPS).update_one({"appId": phone_app["appId"]}, {"$set": {"status": "migrated"}})
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).json() == error(413, "app is migrated")


def test_verify_phone_errors(api, phone_app, access_token):
    missing = user_post(api, access_token, "verifyPhone", json={})
    assert missing.json() == error(403, "missing parameter")
    not_numeric = user_post(api, access_token, "verifyPhone", json={"code": "12ab56"})
    assert not_numeric.json() == error(602, "invalid data")
    nothing_pending = user_post(api, access_token, "verifyPhone", json={"code": "123456"})
    assert nothing_pending.json() == error(602, "invalid data")
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    other_phone = user_post(api, access_token, "verifyPhone", json={"code": latest_sms_code(PHONE), "phone": "+14155550100"})
    assert other_phone.json() == error(602, "invalid data")


def test_wrong_phone_codes_kill_code(api, phone_app, access_token):
    """W8: a phone code dies after five wrong guesses."""
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    right = latest_sms_code(PHONE)
    wrong = str(100000 + (int(right) - 100000 + 1) % 900000)
    for _ in range(5):
        assert user_post(api, access_token, "verifyPhone", json={"code": wrong}).json() == error(602, "invalid data")
    assert user_post(api, access_token, "verifyPhone", json={"code": right}).json() == error(602, "invalid data")
    assert user_document(phone_app, HANDLE).get("phoneVerified") is not True


def test_new_set_phone_replaces_code(api, phone_app, access_token):
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    first = latest_sms_code(PHONE)
    assert user_post(api, access_token, "setPhone", json={"phone": "+14155550178"}).content == b"true"
    assert user_post(api, access_token, "verifyPhone", json={"code": first}).json() == error(602, "invalid data")
    assert user_post(api, access_token, "verifyPhone", json={"code": latest_sms_code("+14155550178")}).content == b"true"
    assert user_document(phone_app, HANDLE)["phone"] == "+14155550178"


def test_phone_code_stored_hashed(api, phone_app, access_token):
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    code = latest_sms_code(PHONE)
    stored = db.collection(db.SMS_CODES).find_one({"appId": phone_app["appId"], "purpose": "phone"})
    assert stored["phone"] == PHONE
    assert code not in str(stored)


def test_set_phone_sms_per_user_limit(api, phone_app, access_token):
    """W8: setPhone cannot send unlimited SMS."""
    before = len(sms_texts(PHONE))
    for _ in range(ratelimit.SMS_PER_USER.events):
        assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    limited = user_post(api, access_token, "setPhone", json={"phone": PHONE})
    assert limited.status_code == 429
    assert limited.json() == error(500, "internal server error")
    assert len(sms_texts(PHONE)) == before + ratelimit.SMS_PER_USER.events


def test_set_phone_sms_per_address_limit(api, phone_app, access_token, monkeypatch):
    monkeypatch.setattr(ratelimit, "SMS_PER_ADDRESS", Limit("sms-address-test", 1, ratelimit.HOUR))
    second_token = register_user(api, phone_app, "second@example.com")["access-token"]
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    limited = user_post(api, second_token, "setPhone", json={"phone": "+14155550178"})
    assert limited.status_code == 429


def test_verify_phone_code_checks_per_address(api, phone_app, access_token, monkeypatch):
    monkeypatch.setattr(ratelimit, "CODE_CHECKS_PER_ADDRESS", Limit("code-address-phone-test", 1, ratelimit.HOUR))
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    assert user_post(api, access_token, "verifyPhone", json={"code": "000000"}).json() == error(602, "invalid data")
    assert user_post(api, access_token, "verifyPhone", json={"code": latest_sms_code(PHONE)}).status_code == 429


def test_set_phone_through_twilio(api, phone_app, access_token, twilio):
    use_twilio(phone_app, twilio)
    assert user_post(api, access_token, "setPhone", json={"phone": PHONE}).content == b"true"
    assert [message.to for message in twilio.messages] == [PHONE]
    code = twilio.messages[0].body.split()[0]
    assert user_post(api, access_token, "verifyPhone", json={"code": code}).content == b"true"


def test_set_phone_twilio_failure_stores_nothing(api, phone_app, access_token, twilio):
    use_twilio(phone_app, twilio)
    twilio.reject = {"code": 21614, "message": "'To' number is not a valid mobile number"}
    response = user_post(api, access_token, "setPhone", json={"phone": PHONE})
    assert response.status_code == 400
    assert response.json() == error(500, "internal server error")
    assert db.collection(db.SMS_CODES).find_one({"appId": phone_app["appId"]}) is None


def test_outbox_refused_in_azure(api, phone_app, access_token, monkeypatch):
    """Without a Twilio account, an Azure deployment fails the SMS instead of writing codes to disk."""
    from cosync.settings import get_settings

    monkeypatch.setenv("KEY_VAULT_URL", "https://vault.invalid/")
    get_settings.cache_clear()
    from cosync.services.apps import load_app
    from cosync.sms import SmsError, send_sms

    with pytest.raises(SmsError, match="has no Twilio account"):
        send_sms(load_app(phone_app["appId"]), PHONE, "test")


def test_app_twilio_sends_through_twilio(api, phone_app, server_secret, twilio):
    use_twilio(phone_app, twilio)
    response = api.post(
        "/api/app/testAppTwilio",
        headers={"server-secret": server_secret},
        json={"appId": phone_app["appId"], "phone": PHONE, "handle": HANDLE},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body) == ["channel", "sid", "status", "twoFactorCode"]
    assert body["channel"] == "twilio"
    assert body["status"] == "queued"
    assert body["sid"].startswith("SM")
    assert 100000 <= body["twoFactorCode"] <= 999999
    assert len(twilio.messages) == 1
    assert twilio.messages[0].body.startswith(str(body["twoFactorCode"]))


def test_app_twilio_reports_rejection(api, phone_app, server_secret, twilio):
    use_twilio(phone_app, twilio)
    twilio.reject = {"code": 21211, "message": "The 'To' number is not a valid phone number."}
    response = api.post(
        "/api/app/testAppTwilio", headers={"server-secret": server_secret}, json={"appId": phone_app["appId"], "phone": PHONE}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 500
    assert body["message"] == "internal server error"
    assert body["provider"]["status"] == 400
    assert body["provider"]["code"] == 21211
    assert "not a valid phone number" in body["provider"]["message"]


def test_app_twilio_outbox_without_account(api, phone_app, server_secret):
    response = api.post(
        "/api/app/testAppTwilio", headers={"server-secret": server_secret}, json={"appId": phone_app["appId"], "phone": PHONE}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["channel"] == "outbox"
    assert body["sid"] is None
    assert latest_sms_code(PHONE) == str(body["twoFactorCode"])


def test_app_twilio_errors(api, phone_app, server_secret, access_token):
    no_secret = api.post("/api/app/testAppTwilio", json={"appId": phone_app["appId"], "phone": PHONE})
    assert no_secret.status_code == 403
    assert no_secret.json() == error(400, "invalid admin token")
    as_user = api.post("/api/app/testAppTwilio", headers={"access-token": access_token}, json={"appId": phone_app["appId"], "phone": PHONE})
    assert as_user.status_code == 403
    headers = {"server-secret": server_secret}
    unknown = api.post("/api/app/testAppTwilio", headers=headers, json={"appId": "0" * 32, "phone": PHONE})
    assert unknown.json() == error(401, "app no longer exist")
    missing = api.post("/api/app/testAppTwilio", headers=headers, json={"appId": phone_app["appId"]})
    assert missing.json() == error(403, "missing parameter")
    bad_phone = api.post("/api/app/testAppTwilio", headers=headers, json={"appId": phone_app["appId"], "phone": "x"})
    assert bad_phone.json() == error(602, "invalid data")
