"""A database as the reference CosyncJWT server leaves it, used over HTTP through our server:
bcrypt logins upgrade to Argon2id, old tokens keep working, old keys and credentials decrypt."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import struct
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from cosync.crypto import GCM_PREFIX, decrypt_field
from cosync.secrets import get_secrets
from cosync.settings import get_settings
from cosync.sms import twilio_account
from flows import digest, error
from legacy_helpers import (
    ctr_encrypt,
    insert_app,
    legacy_access_token,
    legacy_app,
    legacy_server_secret,
    legacy_signup,
    legacy_user,
    sign_legacy,
    whole_seconds,
)
from sendgrid_fake import running_fake_sendgrid
from admin_helpers import operator  # noqa: F401 (fixture)

PASSWORD = "legacy password"


@pytest.fixture
def old_app(database):
    return insert_app(database, legacy_app())


def _login(api, app, handle, password=PASSWORD):
    return api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                    json={"handle": handle, "password": digest(password)})


def _public_key(app):
    return serialization.load_pem_public_key(base64.b64decode(app["_legacy"]["public64"]))


def test_bcrypt_login_upgrades_to_argon2id(api, database, old_app):
    database["users"].insert_one(legacy_user(old_app, "ada@example.com"))

    first = _login(api, old_app, "ada@example.com")
    stored = database["users"].find_one({"appId": old_app["appId"], "handle": "ada@example.com"})
    second = _login(api, old_app, "ada@example.com")

    assert first.status_code == 200, first.text
    assert stored["password"].startswith("$argon2id$")
    assert second.status_code == 200, second.text
    claims = jwt.decode(second.json()["jwt"], _public_key(old_app), algorithms=["RS256"], audience="none")
    assert claims["sub"] == "ada@example.com"


def test_bcrypt_wrong_password_keeps_hash(api, database, old_app):
    user = legacy_user(old_app, "bob@example.com")
    database["users"].insert_one(user)

    response = _login(api, old_app, "bob@example.com", "not the password")

    assert response.status_code == 400
    assert response.json() == error(600, "invalid login credentials")
    assert database["users"].find_one({"_id": user["_id"]})["password"] == user["password"]


def _totp(secret: str, at: float) -> str:
    key = base64.b32decode(secret.replace(" ", "").upper())
    counter = struct.pack(">Q", int(at // 30))
    mac = hmac.new(key, counter, hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def test_two_factor_login_upgrades_hash(api, database):
    app = insert_app(database, legacy_app(twoFactorVerification="google"))
    # CosyncJWT's TOTP secret: base32 lower-cased, a space after every 4 characters, in clear.
    seed = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq"
    database["users"].insert_one(legacy_user(app, "tfa@example.com", twoFactorGoogleVerification=True, googleSecretKey=seed))

    challenge = _login(api, app, "tfa@example.com")
    stored = database["users"].find_one({"appId": app["appId"], "handle": "tfa@example.com"})
    completed = api.post("/api/appuser/loginComplete", headers={"app-token": app["appToken"]},
                         json={"loginToken": challenge.json()["login-token"], "code": _totp(seed, time.time())})

    assert challenge.status_code == 200, challenge.text
    assert stored["password"].startswith("$argon2id$")
    assert completed.status_code == 200, completed.text
    assert set(completed.json()) == {"jwt", "access-token"}


def test_old_access_token_reads_user(api, database, old_app):
    user = legacy_user(old_app, "cy@example.com", metaData={"user_data": {"name": "Cy"}})
    database["users"].insert_one(user)

    response = api.get("/api/appuser/getUser", headers={"access-token": legacy_access_token(old_app, "cy@example.com")})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["handle"] == "cy@example.com"
    assert body["metaData"] == {"user_data": {"name": "Cy"}}
    assert body["createdAt"] == user["createdAt"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "__v" not in body


def test_user_missing_fields_gets_defaults(api, database, old_app):
    # An early CosyncJWT document: no status, locale, provider, metadata, flags or dates.
    bare = {key: value for key, value in legacy_user(old_app, "dee@example.com").items()
            if key in ("_id", "handle", "appId", "password")}
    database["users"].insert_one(bare)

    login = _login(api, old_app, "dee@example.com")
    response = api.get("/api/appuser/getUser", headers={"access-token": legacy_access_token(old_app, "dee@example.com")})

    assert login.status_code == 200, login.text
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["locale"] == "EN"
    assert body["loginProvider"] == ""
    assert body["metaData"] == {}
    assert body["twoFactorGoogleVerification"] is False
    assert "status" not in database["users"].find_one({"_id": bare["_id"]})


def test_app_missing_settings_gets_defaults(api, database):
    app = legacy_app()
    for name in ("signupEnabled", "signupFlow", "invitationEnabled", "locales", "metaData", "metaDataInvite",
                 "userJWTExpiration", "jwtEnabled"):
        del app[name]
    insert_app(database, app)

    response = api.get("/api/appuser/getApplication", headers={"app-token": app["appToken"]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["signupFlow"] == "code"
    assert body["locales"] == ["EN"]
    assert body["userJWTExpiration"] == 24
    assert body["invitationEnabled"] is True


def test_old_app_token_in_query(api, database, old_app):
    response = api.get("/api/appuser/getApplication", params={"appToken": old_app["appToken"]})

    assert response.status_code == 200, response.text
    assert response.json()["name"] == old_app["name"]


def test_old_server_secret_on_operator_route(api, old_app):
    response = api.get(f"/api/app/appId/{old_app['appId']}", headers={"server-secret": legacy_server_secret()})

    assert response.status_code == 200, response.text
    assert response.json()["appToken"] == old_app["appToken"]


def test_owner_scoped_access_token_is_no_server_secret(api, old_app):
    # CosyncJWT took the access token's scope from the request's `owner` field.
    forged = sign_legacy({"handle": "eve@example.com", "appId": old_app["appId"], "scope": "server"})

    response = api.get("/api/app/allApps", headers={"server-secret": forged})

    assert response.status_code == 401
    assert response.json() == error(400, "invalid admin token")


def test_app_public_key_and_jwks(api, old_app):
    read = api.get(f"/api/app/appId/{old_app['appId']}", headers={"server-secret": legacy_server_secret()})
    jwks = api.get(f"/api/apps/{old_app['appId']}/jwks.json")

    assert read.json()["appPublicKey"] == old_app["_legacy"]["public64"]
    assert jwks.status_code == 200, jwks.text
    numbers = _public_key(old_app).public_numbers()
    [key] = jwks.json()["keys"]
    modulus = int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4)), "big")
    assert modulus == numbers.n


@pytest.mark.parametrize("stored_code", [654321, 654321.0, "654321"])
def test_pending_signup_completes_with_code(api, database, old_app, stored_code):
    handle = f"new-{type(stored_code).__name__}@example.com"
    record = legacy_signup(old_app, handle, stored_code)
    database["signups"].insert_one(record)

    response = api.post("/api/appuser/completeSignup", headers={"app-token": old_app["appToken"]},
                        json={"handle": handle, "code": "654321"})
    signup = database["signups"].find_one({"_id": record["_id"]})
    login = _login(api, old_app, handle)

    assert response.status_code == 200, response.text
    assert signup["status"] == "verified"
    assert "code" not in signup
    assert "password" not in signup
    assert login.status_code == 200, login.text


def test_login_to_pending_signup(api, database, old_app):
    database["signups"].insert_one(legacy_signup(old_app, "pending@example.com", 654321))

    right = _login(api, old_app, "pending@example.com")
    wrong = _login(api, old_app, "pending@example.com", password="not the password")

    # Only the owner of the password learns that the sign-up waits for its code.
    assert (right.status_code, right.json()) == (400, error(608, "account has not been verified"))
    assert (wrong.status_code, wrong.json()) == (400, error(600, "invalid login credentials"))


def test_pending_signup_without_status(api, database, old_app):
    record = legacy_signup(old_app, "nostatus@example.com", 135790)
    del record["status"]
    database["signups"].insert_one(record)

    response = api.post("/api/appuser/completeSignup", headers={"app-token": old_app["appToken"]},
                        json={"handle": "nostatus@example.com", "code": 135790})

    assert response.status_code == 200, response.text
    assert database["signups"].find_one({"_id": record["_id"]})["status"] == "verified"


def test_signup_again_keeps_old_code(api, database, old_app):
    database["signups"].insert_one(legacy_signup(old_app, "again@example.com", 654321))

    repeated = api.post("/api/appuser/signup", headers={"app-token": old_app["appToken"]},
                        json={"handle": "again@example.com", "password": digest("another password")})
    completed = api.post("/api/appuser/completeSignup", headers={"app-token": old_app["appToken"]},
                         json={"handle": "again@example.com", "code": "654321"})
    user = database["users"].find_one({"appId": old_app["appId"], "handle": "again@example.com"})

    assert repeated.status_code == 200, repeated.text
    assert completed.status_code == 200, completed.text
    # Two passwords were offered for one address, so neither is kept (see the sign-up service).
    assert user["password"] == ""


def test_pending_signup_wrong_code(api, database, old_app):
    database["signups"].insert_one(legacy_signup(old_app, "wrong@example.com", 654321))

    response = api.post("/api/appuser/completeSignup", headers={"app-token": old_app["appToken"]},
                        json={"handle": "wrong@example.com", "code": "123456"})

    assert response.status_code == 400
    assert response.json() == error(602, "invalid data")
    assert database["users"].count_documents({"appId": old_app["appId"], "handle": "wrong@example.com"}) == 0


def test_pending_signup_expires_after_48_hours(api, database, old_app):
    stale = whole_seconds() - datetime.timedelta(hours=49)
    database["signups"].insert_one(legacy_signup(old_app, "late@example.com", 654321, updatedAt=stale, createdAt=stale))

    response = api.post("/api/appuser/completeSignup", headers={"app-token": old_app["appToken"]},
                        json={"handle": "late@example.com", "code": "654321"})

    assert response.status_code == 400
    assert response.json() == error(411, "signup code expired.")


def test_pending_invite_registers_with_code(api, database, old_app):
    database["invites"].insert_one({
        "handle": "guest@example.com", "appId": old_app["appId"], "senderHandle": "superuser",
        "senderUserId": "superuser", "metaData": {}, "code": 246810, "status": "pending",
        "createdAt": whole_seconds(), "updatedAt": whole_seconds(), "__v": 0,
    })

    response = api.post("/api/appuser/register", headers={"app-token": old_app["appToken"]},
                        json={"handle": "guest@example.com", "password": digest(PASSWORD), "code": "246810"})

    assert response.status_code == 200, response.text
    assert _login(api, old_app, "guest@example.com").status_code == 200


TWILIO = {"TWILIOAccountSid": "AC" + "1b" * 16, "TWILIOToken": "t" * 32, "TWILIOPhoneNumber": "+15557654321"}


def test_twilio_ctr_read_then_gcm_after_write(operator, database):
    app = insert_app(database, legacy_app(twoFactorVerification="phone",
                                          **{name: ctr_encrypt(value) for name, value in TWILIO.items()}))
    stored = database["apps"].find_one({"appId": app["appId"]})

    account = twilio_account(stored)
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "twoFactorVerification",
                                                   "twoFactorVerification": "phone", **TWILIO, "TWILIOToken": "u" * 32})
    written = database["apps"].find_one({"appId": app["appId"]})

    assert (account.account_sid, account.auth_token, account.sender) == tuple(TWILIO.values())
    assert response.status_code == 200, response.text
    for name in TWILIO:
        assert written[name].startswith(GCM_PREFIX)
    assert decrypt_field(get_secrets().encryption_key, written["TWILIOToken"], f"apps.TWILIOToken:{app['appId']}") == "u" * 32


def test_sendgrid_ctr_key_sends_then_gcm_after_write(operator, database, monkeypatch):
    key = "SG.legacy-extension.key0123456789"
    app = insert_app(database, legacy_app(emailExtension=True, emailExtensionSenderEmail="ops@example.com",
                                          emailExtensionAPIKey=ctr_encrypt(key)))

    with running_fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_HOST", fake.url)
        get_settings.cache_clear()
        sent = operator.post("/testEmailExtension", {"appId": app["appId"]})
        requests_seen = list(fake.requests)
    rewritten = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "emailExtensionAPIKey",
                                                    "emailExtensionAPIKey": key})
    stored = database["apps"].find_one({"appId": app["appId"]})["emailExtensionAPIKey"]

    assert sent.status_code == 200, sent.text
    assert requests_seen[0].headers["Authorization"] == f"Bearer {key}"
    assert rewritten.status_code == 200, rewritten.text
    assert stored.startswith(GCM_PREFIX)
    assert decrypt_field(get_secrets().encryption_key, stored, f"apps.emailExtensionAPIKey:{app['appId']}") == key
