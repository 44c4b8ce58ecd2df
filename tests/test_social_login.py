"""POST /api/appuser/socialLogin and POST /api/appuser/socialSignup with Apple and Google ID
tokens, verified against JWK sets served by a local fake."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from cosync import db
from cosync.mail import read_outbox
from cosync.settings import get_settings
from flows import audit_log, digest, error, register_user
from idp_fake import APPLE_AUDIENCE, GOOGLE_AUDIENCE, running_fake_idp

TOKEN_IS_INVALID = error(613, "token is invalid")


@pytest.fixture(scope="module")
def idp():
    with running_fake_idp() as fake:
        yield fake


@pytest.fixture(autouse=True)
def provider_keys(idp, environment, monkeypatch):
    monkeypatch.setenv("APPLE_KEYS_URL", idp.keys_url("apple"))
    monkeypatch.setenv("GOOGLE_KEYS_URL", idp.keys_url("google"))
    get_settings.cache_clear()


@pytest.fixture
def social_app(new_app):
    def create(**fields):
        settings = {
            "appleLoginEnabled": True,
            "appleBundleId": f"com.example.other, {APPLE_AUDIENCE}",
            "googleLoginEnabled": True,
            "googleClientId": GOOGLE_AUDIENCE,
            **fields,
        }
        return new_app(**settings)

    return create


def _signup(api, app, token, provider, handle, header="app-token", **extra):
    return api.post(
        "/api/appuser/socialSignup",
        headers={header: app["appToken"]},
        json={"token": token, "provider": provider, "handle": handle, **extra},
    )


def _login(api, app, token, provider, header="app-token"):
    return api.post("/api/appuser/socialLogin", headers={header: app["appToken"]}, json={"token": token, "provider": provider})


def _claims(app, body):
    public_pem = base64.b64decode(app["appPublicKey"])
    return jwt.decode(body["jwt"], public_pem, algorithms=["RS256"], audience="none")


def test_social_signup_with_apple_token(api, social_app, idp, database):
    """W20: the handle is stored lower-cased, like every other handle."""
    app = social_app()
    token = idp.id_token("apple", "Ann@Example.com")
    response = _signup(api, app, token, "apple", "Ann@Example.com")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jwt", "access-token"}
    assert _claims(app, body)["sub"] == "ann@example.com"
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "ann@example.com"})
    assert user["loginProvider"] == "apple"
    assert user["socialUserId"] == "apple-user-Ann@Example.com"
    assert user["password"] == ""
    assert user["status"] == "active"
    record = database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": "ann@example.com"})
    assert record["status"] == "active"
    assert record["signupProvider"] == "apple"
    assert read_outbox()[-1]["to"] == "ann@example.com"
    assert read_outbox()[-1]["subject"] == f"Welcome to {app['name']}"


def test_social_login_with_apple_token(api, social_app, idp, database):
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "bo@example.com"), "apple", "bo@example.com").status_code == 200
    response = _login(api, app, idp.id_token("apple", "bo@example.com"), "apple")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jwt", "access-token"}
    assert _claims(app, body)["sub"] == "bo@example.com"
    access = jwt.decode(body["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"
    assert access["handle"] == "bo@example.com"
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "bo@example.com"})
    assert user["lastLogin"] > user["createdAt"]


def test_social_login_finds_account_by_subject(api, social_app, idp):
    """The provider's user id finds the account even when the token carries no e-mail address."""
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "cy@example.com"), "apple", "cy@example.com").status_code == 200
    later = idp.id_token("apple", "ignored", sub="apple-user-cy@example.com", email=None, email_verified=None)
    response = _login(api, app, later, "apple")
    assert response.status_code == 200, response.text
    assert _claims(app, response.json())["sub"] == "cy@example.com"


def test_social_signup_and_login_with_google(api, social_app, idp):
    app = social_app()
    response = _signup(api, app, idp.id_token("google", "di@example.com"), "google", "di@example.com")
    assert response.status_code == 200, response.text
    # Google also issues tokens with the issuer spelled without the scheme.
    token = idp.id_token("google", "di@example.com", iss="accounts.google.com")
    login = _login(api, app, token, "google")
    assert login.status_code == 200, login.text
    assert _claims(app, login.json())["sub"] == "di@example.com"


def test_social_signup_form_body_like_swift(api, social_app, idp):
    app = social_app()
    token = idp.id_token("apple", "ed+tag@example.com")
    # Swift does not apply its %2B fix to this handle. An address the caller encoded itself
    # still arrives with its `+`.
    response = api.post(
        "/api/appuser/socialSignup",
        headers={"app-token": app["appToken"]},
        data=f"token={token}&provider=apple&handle=ed%2Btag@example.com",
    )
    assert response.status_code == 200, response.text
    assert _claims(app, response.json())["sub"] == "ed+tag@example.com"


def test_social_login_form_body_like_swift(api, social_app, idp):
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "fo@example.com"), "apple", "fo@example.com").status_code == 200
    response = api.post(
        "/api/appuser/socialLogin",
        headers={"app-token": app["appToken"]},
        data=f"token={idp.id_token('apple', 'fo@example.com')}&provider=apple",
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"jwt", "access-token"}


@pytest.mark.parametrize("case", [
    "wrong issuer", "wrong audience", "expired", "alg none", "HS256 with public key", "unknown kid",
    "other key", "email not verified", "not a JWT", "no sub",
])
def test_social_signup_rejects_bad_apple_token(api, social_app, idp, database, case):
    """W3 and W20: only RS256 tokens signed by a key of the provider, for this app, unexpired,
    with a verified e-mail address, are accepted."""
    from idp_fake import _new_key

    email = "forged@example.com"
    tokens = {
        "wrong issuer": lambda: idp.id_token("apple", email, iss="https://evil.example.com"),
        "wrong audience": lambda: idp.id_token("apple", email, aud="com.example.someone-else"),
        "expired": lambda: idp.id_token("apple", email, iat=1_600_000_000, exp=1_600_000_600),
        "alg none": lambda: idp.unsigned_token("apple", email),
        "HS256 with public key": lambda: idp.hmac_token_with_public_key("apple", email),
        "unknown kid": lambda: idp.id_token("apple", email, kid="no-such-key"),
        "other key": lambda: idp.id_token("apple", email, key=_new_key()),
        "email not verified": lambda: idp.id_token("apple", email, email_verified="false"),
        "not a JWT": lambda: "not-a-token",
        "no sub": lambda: idp.id_token("apple", email, sub=None),
    }
    app = social_app()
    response = _signup(api, app, tokens[case](), "apple", email)

    assert response.status_code == 400
    assert response.json() == TOKEN_IS_INVALID
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_social_login_rejects_google_token_with_unverified_email(api, social_app, idp):
    """W20: Google's `email_verified: false` is refused."""
    app = social_app()
    assert _signup(api, app, idp.id_token("google", "fa@example.com"), "google", "fa@example.com").status_code == 200
    response = _login(api, app, idp.id_token("google", "fa@example.com", email_verified=False), "google")
    assert response.status_code == 400
    assert response.json() == TOKEN_IS_INVALID


def test_social_login_rejects_apple_token_for_google_audience(api, social_app, idp):
    app = social_app()
    token = idp.id_token("apple", "gu@example.com", aud=GOOGLE_AUDIENCE)
    assert _login(api, app, token, "apple").json() == TOKEN_IS_INVALID


def test_social_signup_rejects_token_for_other_email(api, social_app, idp, database):
    app = social_app()
    response = _signup(api, app, idp.id_token("apple", "real@example.com"), "apple", "victim@example.com")
    assert response.json() == TOKEN_IS_INVALID
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_social_login_accepts_client_id_list(api, social_app, idp):
    app = social_app(googleClientId=["other.apps.googleusercontent.com", GOOGLE_AUDIENCE])
    response = _signup(api, app, idp.id_token("google", "li@example.com"), "google", "li@example.com")
    assert response.status_code == 200, response.text


def test_social_routes_check_provider_switches(api, social_app, idp):
    cases = [
        ({"appleLoginEnabled": False}, "apple", error(415, "app does not support Apple Authentication")),
        ({"appleBundleId": " , "}, "apple", error(415, "app does not support Apple Authentication")),
        ({"googleLoginEnabled": False}, "google", error(416, "app does not support Google Authentication")),
        ({"googleClientId": ""}, "google", error(416, "app does not support Google Authentication")),
    ]
    for fields, provider, expected in cases:
        app = social_app(**fields)
        token = idp.id_token(provider, "sw@example.com")
        signup = _signup(api, app, token, provider, "sw@example.com")
        assert signup.status_code == 400
        assert signup.json() == expected
        assert _login(api, app, token, provider).json() == expected


def test_social_routes_reject_missing_fields_and_bad_provider(api, social_app, idp):
    app = social_app()
    token = idp.id_token("apple", "mi@example.com")
    missing = error(403, "missing parameter")
    assert _signup(api, app, "", "apple", "mi@example.com").json() == missing
    assert _signup(api, app, token, "", "mi@example.com").json() == missing
    assert _signup(api, app, token, "apple", "").json() == missing
    assert _login(api, app, "", "apple").json() == missing
    assert _login(api, app, token, "").json() == missing
    assert _signup(api, app, token, "facebook", "mi@example.com").json() == error(602, "invalid data")
    assert _login(api, app, token, "facebook").json() == error(602, "invalid data")
    assert _signup(api, app, token, "apple", "not-an-address").json() == error(602, "invalid data")
    assert _signup(api, app, ["a", "b"], "apple", "mi@example.com").json() == error(602, "invalid data")


def test_social_login_without_account(api, social_app, idp):
    app = social_app()
    response = _login(api, app, idp.id_token("apple", "nobody@example.com"), "apple")
    assert response.status_code == 400
    assert response.json() == error(603, "account does not exist")


def test_social_login_reports_account_of_other_provider(api, social_app, idp):
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "ha@example.com"), "apple", "ha@example.com").status_code == 200
    assert _signup(api, app, idp.id_token("google", "ho@example.com"), "google", "ho@example.com").status_code == 200
    register_user(api, app, "pw@example.com")

    assert _login(api, app, idp.id_token("google", "ha@example.com"), "google").json() == error(
        611, "Apple account already exist"
    )
    assert _login(api, app, idp.id_token("apple", "ho@example.com"), "apple").json() == error(
        612, "Google account already exist"
    )
    assert _login(api, app, idp.id_token("apple", "pw@example.com"), "apple").json() == error(
        610, "email account already exist"
    )


def test_social_signup_reports_existing_account(api, social_app, idp):
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "ia@example.com"), "apple", "ia@example.com").status_code == 200
    assert _signup(api, app, idp.id_token("google", "ig@example.com"), "google", "ig@example.com").status_code == 200
    register_user(api, app, "ip@example.com")

    assert _signup(api, app, idp.id_token("google", "ia@example.com"), "google", "IA@example.com").json() == error(
        611, "Apple account already exist"
    )
    assert _signup(api, app, idp.id_token("apple", "ig@example.com"), "apple", "ig@example.com").json() == error(
        612, "Google account already exist"
    )
    assert _signup(api, app, idp.id_token("apple", "ip@example.com"), "apple", "ip@example.com").json() == error(
        610, "email account already exist"
    )
    # The same Apple user cannot open a second account under another address.
    second = idp.id_token("apple", "ia2@example.com", sub="apple-user-ia@example.com")
    assert _signup(api, app, second, "apple", "ia2@example.com").json() == error(611, "Apple account already exist")


def test_social_signup_hides_accounts_from_bad_tokens(api, social_app):
    """W12: without a valid ID token, socialSignup does not tell whether an address has an account."""
    app = social_app()
    register_user(api, app, "known@example.com")
    response = _signup(api, app, "forged", "apple", "known@example.com")
    assert response.json() == TOKEN_IS_INVALID


def test_social_routes_reject_suspended_and_migrated_apps(api, social_app, idp):
    """W13: social routes check the app's status, unlike CosyncJWT."""
    for status, expected in (("inactive", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))):
        app = social_app(status=status)
        token = idp.id_token("apple", "st@example.com")
        assert _signup(api, app, token, "apple", "st@example.com").json() == expected
        assert _login(api, app, token, "apple").json() == expected


def test_social_routes_reject_deleted_app(api, social_app, idp, database):
    app = social_app()
    database[db.APPS].delete_one({"appId": app["appId"]})
    token = idp.id_token("apple", "gone@example.com")
    assert _signup(api, app, token, "apple", "gone@example.com").json() == error(401, "app no longer exist")
    assert _login(api, app, token, "apple").json() == error(401, "app no longer exist")


def test_social_login_rejects_suspended_user(api, social_app, idp, database):
    """W13: a suspended user cannot log in with Apple or Google."""
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "su@example.com"), "apple", "su@example.com").status_code == 200
    database[db.USERS].update_one({"appId": app["appId"], "handle": "su@example.com"}, {"$set": {"status": "suspended"}})
    response = _login(api, app, idp.id_token("apple", "su@example.com"), "apple")
    assert response.status_code == 400
    assert response.json() == error(404, "user account is suspended")


def test_social_signup_needs_app_token(api, social_app, idp):
    app = social_app()
    session = register_user(api, app, "tok@example.com")
    response = api.post(
        "/api/appuser/socialSignup",
        headers={"access-token": session["access-token"]},
        json={"token": idp.id_token("apple", "new@example.com"), "provider": "apple", "handle": "new@example.com"},
    )
    assert response.json() == error(400, "invalid app token")
    assert api.post("/api/appuser/socialLogin", json={"token": "x", "provider": "apple"}).json() == error(
        400, "invalid app token"
    )


def test_social_login_accepts_access_token_header(api, social_app, idp):
    """JS holding a session sends only `access-token`; socialLogin needs only the app id."""
    app = social_app()
    session = register_user(api, app, "js@example.com")
    assert _signup(api, app, idp.id_token("apple", "jt@example.com"), "apple", "jt@example.com").status_code == 200
    response = api.post(
        "/api/appuser/socialLogin",
        headers={"access-token": session["access-token"]},
        json={"token": idp.id_token("apple", "jt@example.com"), "provider": "apple"},
    )
    assert response.status_code == 200, response.text


def test_social_signup_validates_locale_and_metadata(api, social_app, idp):
    fields = [{"id": "1", "path": "profile.name", "fieldName": "name", "required": True, "canEdit": True}]
    app = social_app(metaData=fields, locales=["EN", "FR"])
    token = idp.id_token("apple", "md@example.com")
    assert _signup(api, app, token, "apple", "md@example.com", locale="DE").json() == error(602, "invalid data")
    assert _signup(api, app, token, "apple", "md@example.com", metaData="{not json").json() == error(602, "invalid data")
    assert _signup(api, app, token, "apple", "md@example.com", metaData='{"profile": {"name": 5}}').json() == error(
        602, "invalid data"
    )
    assert _signup(api, app, token, "apple", "md@example.com", metaData="{}").json() == error(604, "invalid metadata")

    response = _signup(api, app, token, "apple", "md@example.com", locale="fr", metaData='{"profile": {"name": " Mo "}}')
    assert response.status_code == 200, response.text
    assert _claims(app, response.json())["profile"] == {"name": "Mo"}


def test_social_signup_ignores_owner(api, social_app, idp):
    """W1: the access token's scope is "user" whatever `owner` contains."""
    app = social_app()
    response = _signup(api, app, idp.id_token("apple", "ow@example.com"), "apple", "ow@example.com", owner="server")
    access = jwt.decode(response.json()["access-token"], options={"verify_signature": False})
    assert access["scope"] == "user"


def test_social_error_bodies_carry_no_token(api, social_app, idp, database):
    """W4 and W18: an error body is exactly code and message, and no log keeps the ID token."""
    app = social_app()
    token = idp.id_token("apple", "leak@example.com", aud="com.example.someone-else")
    response = _login(api, app, token, "apple")
    assert response.json() == TOKEN_IS_INVALID
    follow_up = api.post("/api/appuser/forgotPassword", headers={"app-token": app["appToken"]}, json={"handle": "x@example.com"})
    assert token not in follow_up.text
    logs = list(audit_log(database).find({"appId": app["appId"]}))
    assert logs
    assert all(token not in json.dumps(entry, default=str) for entry in logs)


def test_key_set_is_fetched_once_and_cached(api, social_app, idp):
    app = social_app()
    before = idp.requested_paths.count("/google/keys")
    for email in ("c1@example.com", "c2@example.com", "c3@example.com"):
        assert _signup(api, app, idp.id_token("google", email), "google", email).status_code == 200
    assert idp.requested_paths.count("/google/keys") - before <= 1


def test_unknown_kids_refetch_key_set_once(api, social_app, monkeypatch):
    """Tokens naming keys the provider never had make the server refetch the key set at most once
    in 30 seconds, so a flood of them cannot turn the server against the provider."""
    with running_fake_idp() as fresh:
        monkeypatch.setenv("APPLE_KEYS_URL", fresh.keys_url("apple"))
        get_settings.cache_clear()
        app = social_app()
        for number in range(5):
            token = fresh.id_token("apple", "flood@example.com", kid=f"made-up-{number}")
            assert _login(api, app, token, "apple").json() == TOKEN_IS_INVALID
        assert fresh.requested_paths.count("/apple/keys") == 1

        assert _signup(api, app, fresh.id_token("apple", "flood@example.com"), "apple", "flood@example.com").status_code == 200
        assert fresh.requested_paths.count("/apple/keys") == 1


def test_unreachable_key_set_is_internal_error(api, social_app, idp, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("APPLE_KEYS_URL", f"http://127.0.0.1:{closed_port}/apple/keys")
    get_settings.cache_clear()
    app = social_app()
    response = _login(api, app, idp.id_token("apple", "down@example.com"), "apple")
    assert response.status_code == 400
    assert response.json() == error(500, "internal server error")


def test_social_login_password_user_cannot_use_social_password(api, social_app, idp):
    """A social account has no password, so password login fails."""
    app = social_app()
    assert _signup(api, app, idp.id_token("apple", "np@example.com"), "apple", "np@example.com").status_code == 200
    response = api.post(
        "/api/appuser/login", headers={"app-token": app["appToken"]}, json={"handle": "np@example.com", "password": digest("")}
    )
    assert response.json() == error(600, "invalid login credentials")
