"""Google (TOTP) two-factor: setTwoFactorGoogleVerification, the login token and loginComplete."""

from __future__ import annotations

import base64
import re
import time

import jwt
import pytest

from cosync import db, totp
from cosync.services.users import revoke_tokens
from cosync.tokens import sign_with_server_key
from flows import error, register_user
from two_factor_helpers import (
    complete,
    enable_google,
    login,
    totp_code,
    user_document,
    user_post,
)

HANDLE = "ada@example.com"
SECRET_FORMAT = re.compile(r"[a-z2-7]{4}( [a-z2-7]{4}){7}")


@pytest.fixture
def google_app(new_app):
    return new_app(twoFactorVerification="google", googleAppName="Example Co")


@pytest.fixture
def google_user(api, google_app):
    """A user with Google two-factor on: (access token, secret)."""
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    return access_token, enable_google(api, access_token)


def login_token(api, app) -> str:
    response = login(api, app, HANDLE)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["login-token"]
    return response.json()["login-token"]


def test_enable_returns_secret_and_qr_png(api, google_app):
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    response = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["QRDataImage", "googleSecretKey"]
    assert SECRET_FORMAT.fullmatch(body["googleSecretKey"])
    assert len(body["googleSecretKey"]) == 39
    prefix = "data:image/png;base64,"
    assert body["QRDataImage"].startswith(prefix)
    assert base64.b64decode(body["QRDataImage"][len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"
    assert user_document(google_app, HANDLE)["twoFactorGoogleVerification"] is True


def test_secret_stored_encrypted(api, google_app, google_user):
    """W16: the TOTP seed is not stored in clear."""
    _, secret = google_user
    stored = user_document(google_app, HANDLE)["googleSecretKey"]
    assert stored.startswith("gcm1:")
    compact = secret.replace(" ", "")
    assert compact not in stored
    assert compact.upper() not in stored


def test_provisioning_uri_parameters():
    uri = totp.provisioning_uri("Example Co", "ada+x@example.com", "abcd efgh ijkl mnop qrst uvwx yz23 4567")
    assert uri == (
        "otpauth://totp/Example%20Co:ada%2Bx@example.com?secret=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        "&issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
    )


def test_totp_matches_rfc6238_vector():
    # RFC 6238 appendix B, SHA1 key "12345678901234567890", T = 59 s: 94287082 (8 digits).
    key = b"12345678901234567890"
    assert totp.code_at(key, 59 // 30) == "287082"
    assert totp.matching_step(key, "287082", 59) == 1
    assert totp.matching_step(key, "287082", 59 + 30) == 1
    assert totp.matching_step(key, "287082", 59 + 60) is None


def test_login_returns_only_login_token(api, google_app, google_user):
    token = login_token(api, google_app)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "login"
    assert claims["method"] == "google"
    assert claims["handle"] == HANDLE
    assert claims["appId"] == google_app["appId"]
    assert claims["tokenVersion"] == 0
    assert claims["exp"] - claims["iat"] == 600


def test_login_complete_returns_session(api, google_app, google_user):
    _, secret = google_user
    response = complete(api, google_app, login_token(api, google_app), totp_code(secret))
    assert response.status_code == 200, response.text
    assert sorted(response.json()) == ["access-token", "jwt"]
    user = api.get("/api/appuser/getUser", headers={"access-token": response.json()["access-token"]})
    assert user.json()["twoFactorGoogleVerification"] is True


def test_login_complete_accepts_spaced_string_code(api, google_app, google_user):
    _, secret = google_user
    code = totp_code(secret)
    response = complete(api, google_app, login_token(api, google_app), f"{code[:3]} {code[3:]}")
    assert response.status_code == 200, response.text


def test_login_complete_swift_form_body(api, google_app, google_user):
    _, secret = google_user
    token = login_token(api, google_app)
    response = api.post(
        "/api/appuser/loginComplete",
        headers={"app-token": google_app["appToken"]},
        data=f"loginToken={token}&code={totp_code(secret)}",
    )
    assert response.status_code == 200, response.text
    assert "jwt" in response.json()


def test_totp_replay_rejected(api, google_app, google_user):
    """W8, W19: a TOTP code is accepted once, also with a new login token."""
    _, secret = google_user
    code = totp_code(secret)
    assert complete(api, google_app, login_token(api, google_app), code).status_code == 200
    replay = complete(api, google_app, login_token(api, google_app), code)
    assert replay.status_code == 400
    assert replay.json() == error(600, "invalid login credentials")


def test_totp_older_step_rejected_after_newer(api, google_app, google_user):
    _, secret = google_user
    assert complete(api, google_app, login_token(api, google_app), totp_code(secret, 1)).status_code == 200
    older = complete(api, google_app, login_token(api, google_app), totp_code(secret, 0))
    assert older.json() == error(600, "invalid login credentials")


def test_wrong_codes_kill_login_token(api, google_app, google_user):
    """W7, W8: five wrong codes end the login token, even for the right code after them."""
    _, secret = google_user
    token = login_token(api, google_app)
    right = totp_code(secret)
    wrong = str((int(right) + 1) % 1000000).zfill(6)
    for _ in range(5):
        assert complete(api, google_app, token, wrong).json() == error(600, "invalid login credentials")
    assert complete(api, google_app, token, right).json() == error(600, "invalid login credentials")
    fresh = complete(api, google_app, login_token(api, google_app), right)
    assert fresh.status_code == 200


def test_login_token_single_use(api, google_app, google_user):
    _, secret = google_user
    token = login_token(api, google_app)
    assert complete(api, google_app, token, totp_code(secret)).status_code == 200
    again = complete(api, google_app, token, totp_code(secret, 1))
    assert again.json() == error(600, "invalid login credentials")


def test_access_token_rejected_as_login_token(api, google_app, google_user):
    """W19: loginComplete accepts only login tokens, not any token the server signed."""
    access_token, secret = google_user
    for token in (access_token, google_app["appToken"]):
        response = complete(api, google_app, token, totp_code(secret))
        assert response.status_code == 400
        assert response.json() == error(600, "invalid login credentials")


def test_login_token_without_expiry_rejected(api, google_app, google_user):
    """W7: a login-scoped token without `exp` (as CosyncJWT issued them) is refused."""
    _, secret = google_user
    forged = sign_with_server_key(
        {"handle": HANDLE, "appId": google_app["appId"], "scope": "login", "method": "google",
         "tokenVersion": 0, "jti": "x" * 32}
    )
    assert complete(api, google_app, forged, totp_code(secret)).json() == error(600, "invalid login credentials")


def test_expired_login_token_rejected(api, google_app, google_user):
    _, secret = google_user
    expired = sign_with_server_key(
        {"handle": HANDLE, "appId": google_app["appId"], "scope": "login", "method": "google",
         "tokenVersion": 0, "jti": "y" * 32, "exp": int(time.time()) - 1}
    )
    assert complete(api, google_app, expired, totp_code(secret)).json() == error(600, "invalid login credentials")


def test_revoked_login_token_rejected(api, google_app, google_user):
    _, secret = google_user
    token = login_token(api, google_app)
    revoke_tokens(google_app["appId"], HANDLE)
    assert complete(api, google_app, token, totp_code(secret)).json() == error(600, "invalid login credentials")


def test_login_token_of_other_app_rejected(api, new_app, google_app, google_user):
    _, secret = google_user
    other = new_app(twoFactorVerification="google")
    assert complete(api, other, login_token(api, google_app), totp_code(secret)).json() == error(
        600, "invalid login credentials"
    )


def test_login_token_accepted_nowhere_else(api, google_app, google_user):
    """W19: a login token is no access token and no app token."""
    token = login_token(api, google_app)
    as_access = api.get("/api/appuser/getUser", headers={"access-token": token})
    assert as_access.status_code == 400
    assert as_access.json() == error(405, "invalid access token")
    as_app = api.post("/api/appuser/login", headers={"app-token": token}, json={"handle": HANDLE, "password": "x" * 32})
    assert as_app.json() == error(400, "invalid app token")
    as_switch = user_post(api, token, "setTwoFactorGoogleVerification", json={"twoFactor": False})
    assert as_switch.json() == error(405, "invalid access token")


def test_app_switched_off_two_factor_rejects_login_token(api, google_app, google_user):
    """W19: with the app's method now "none", a pending login token gets no session without a check."""
    _, secret = google_user
    token = login_token(api, google_app)
    db.collection(db.APPS).update_one({"appId": google_app["appId"]}, {"$set": {"twoFactorVerification": "none"}})
    assert complete(api, google_app, token, totp_code(secret)).json() == error(600, "invalid login credentials")


def test_login_complete_rejects_suspended_user(api, google_app, google_user):
    """W13: loginComplete checks the user's status."""
    _, secret = google_user
    token = login_token(api, google_app)
    db.collection(db.USERS).update_one({"appId": google_app["appId"], "handle": HANDLE}, {"$set": {"status": "suspended"}})
    assert complete(api, google_app, token, totp_code(secret)).json() == error(404, "user account is suspended")


@pytest.mark.parametrize(("status", "expected"), [("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))])
def test_login_complete_rejects_inactive_app(api, google_app, google_user, status, expected):
    _, secret = google_user
    token = login_token(api, google_app)
    db.collection(db.APPS).update_one({"appId": google_app["appId"]}, {"$set": {"status": status}})
    assert complete(api, google_app, token, totp_code(secret)).json() == expected


def test_login_complete_input_errors(api, google_app, google_user):
    token = login_token(api, google_app)
    headers = {"app-token": google_app["appToken"]}
    missing_token = api.post("/api/appuser/loginComplete", headers=headers, json={"code": "123456"})
    assert missing_token.json() == error(403, "missing parameter")
    missing_code = api.post("/api/appuser/loginComplete", headers=headers, json={"loginToken": token})
    assert missing_code.json() == error(403, "missing parameter")
    for code in ("abcdef", True, {"a": 1}, "1234567890"):
        response = api.post("/api/appuser/loginComplete", headers=headers, json={"loginToken": token, "code": code})
        assert response.json() == error(602, "invalid data"), code
    garbage = complete(api, google_app, "not.a.token", "123456")
    assert garbage.json() == error(600, "invalid login credentials")
    no_app = api.post("/api/appuser/loginComplete", json={"loginToken": token, "code": "123456"})
    assert no_app.json() == error(400, "invalid app token")


def test_legacy_plain_secret_still_verifies(api, google_app, google_user):
    """A database written by CosyncJWT stores the seed in clear; it keeps working."""
    legacy = totp.new_secret()
    db.collection(db.USERS).update_one({"appId": google_app["appId"], "handle": HANDLE}, {"$set": {"googleSecretKey": legacy}})
    response = complete(api, google_app, login_token(api, google_app), totp_code(legacy))
    assert response.status_code == 200, response.text


def test_disable_returns_true_and_login_skips_second_factor(api, google_app, google_user):
    access_token, _ = google_user
    response = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": False})
    assert response.status_code == 200
    assert response.content == b"true"
    stored = user_document(google_app, HANDLE)
    assert stored["twoFactorGoogleVerification"] is False
    assert "googleSecretKey" not in stored
    assert sorted(login(api, google_app, HANDLE).json()) == ["access-token", "jwt"]


@pytest.mark.parametrize(
    ("request_kwargs", "enabled"),
    [
        ({"json": {"twoFactor": True}}, True),
        ({"json": {"twoFactor": "true"}}, True),
        ({"data": "twoFactor=true"}, True),
        ({"json": {"twoFactor": False}}, False),
        ({"json": {"twoFactor": "false"}}, False),
        ({"data": "twoFactor=false"}, False),
        ({"json": {}}, False),
        ({"json": {"twoFactor": 1}}, False),
    ],
)
def test_two_factor_flag_types(api, google_app, request_kwargs, enabled):
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    response = user_post(api, access_token, "setTwoFactorGoogleVerification", **request_kwargs)
    assert response.status_code == 200, response.text
    if enabled:
        assert "googleSecretKey" in response.json()
    else:
        assert response.content == b"true"
    assert user_document(google_app, HANDLE).get("twoFactorGoogleVerification", False) is enabled


def test_swift_double_slash_url(api, google_app):
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    response = api.post(
        "//api/appuser/setTwoFactorGoogleVerification", headers={"access-token": access_token}, data="twoFactor=true"
    )
    assert response.status_code == 200, response.text
    assert SECRET_FORMAT.fullmatch(response.json()["googleSecretKey"])
    off = api.post(
        "//api/appuser/setTwoFactorPhoneVerification", headers={"access-token": access_token}, data="twoFactor=false"
    )
    assert off.content == b"true"


def test_phone_route_in_google_app_acts_on_google(api, google_app, google_user):
    """As in CosyncJWT, both switches act on the app's method."""
    access_token, _ = google_user
    response = user_post(api, access_token, "setTwoFactorPhoneVerification", json={"twoFactor": "false"})
    assert response.content == b"true"
    assert user_document(google_app, HANDLE)["twoFactorGoogleVerification"] is False


def test_switch_errors(api, new_app):
    app = new_app()
    access_token = register_user(api, app, HANDLE)["access-token"]
    google = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert google.json() == error(408, "app does not support google two-factor verification")
    phone = user_post(api, access_token, "setTwoFactorPhoneVerification", json={"twoFactor": True})
    assert phone.json() == error(409, "app does not support phone two-factor verification")
    no_user = api.post(
        "/api/appuser/setTwoFactorGoogleVerification", headers={"app-token": app["appToken"]}, json={"twoFactor": True}
    )
    assert no_user.json() == error(602, "invalid data")
    db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": {"twoFactorVerification": "sms"}})
    unknown = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert unknown.json() == error(602, "invalid data")


def test_switch_rejects_suspended_user_and_app(api, google_app):
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    users = db.collection(db.USERS)
    users.update_one({"appId": google_app["appId"], "handle": HANDLE}, {"$set": {"status": "suspended"}})
    suspended = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert suspended.json() == error(404, "user account is suspended")
    db.collection(db.APPS).update_one({"appId": google_app["appId"]}, {"$set": {"status": "inactive"}})
    inactive = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert inactive.json() == error(402, "app is suspended")


def test_switch_rejects_revoked_access_token(api, google_app):
    access_token = register_user(api, google_app, HANDLE)["access-token"]
    revoke_tokens(google_app["appId"], HANDLE)
    response = user_post(api, access_token, "setTwoFactorGoogleVerification", json={"twoFactor": True})
    assert response.json() == error(405, "invalid access token")


def test_phone_flags_ignored_in_google_app(api, google_app):
    """W19: the user's phone flag alone does not start a second factor the app does not use."""
    register_user(api, google_app, HANDLE)
    db.collection(db.USERS).update_one(
        {"appId": google_app["appId"], "handle": HANDLE},
        {"$set": {"twoFactorPhoneVerification": True, "phoneVerified": True, "phone": "+14155550100"}},
    )
    assert sorted(login(api, google_app, HANDLE).json()) == ["access-token", "jwt"]


def test_access_token_from_login_complete_is_user_scope(api, google_app, google_user):
    _, secret = google_user
    session = complete(api, google_app, login_token(api, google_app), totp_code(secret)).json()
    claims = jwt.decode(session["access-token"], options={"verify_signature": False})
    assert claims["scope"] == "user"
    assert claims["handle"] == HANDLE


def test_json_number_code_accepted(api, google_app, google_user):
    """W5: a TOTP code sent as a JSON number is checked, not a crash."""
    _, secret = google_user
    response = complete(api, google_app, login_token(api, google_app), int(totp_code(secret)))
    assert response.status_code == 200, response.text
