"""Unit tests of the per-app user JWT: the claim mapping of `user_jwt_claims` and the token that
`issue_user_jwt` signs with the app's key."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from cosync.keys import generate_app_key_pair, thumbprint
from cosync.tokens import UserJwtKey, issue_user_jwt, user_jwt_claims

NOW = 1_700_000_000.75
APP_ID = "0123456789abcdef0123456789abcdef"
HANDLE = "ann@example.com"
ISSUER = f"http://127.0.0.1:7071/api/apps/{APP_ID}"


def make_app(**fields):
    return {"appId": APP_ID, "userJWTExpiration": 24, "metaDataEmail": True, **fields}


def make_user(**fields):
    return {"handle": HANDLE, **fields}


def test_claims_for_plain_user():
    claims = user_jwt_claims(make_user(), make_app(), NOW)

    assert claims == {
        "aud": "none",
        "sub": HANDLE,
        "exp": 1_700_000_000 + 24 * 3600,
        "iss": ISSUER,
        "email": HANDLE,
        "iat": 1_700_000_000,
    }


def test_aud_is_realm_app_id():
    claims = user_jwt_claims(make_user(), make_app(realmAppId="application-0-abcde"), NOW)

    assert claims["aud"] == "application-0-abcde"


@pytest.mark.parametrize("realm_app_id", [None, ""])
def test_aud_without_realm_app_is_none_literal(realm_app_id):
    claims = user_jwt_claims(make_user(), make_app(realmAppId=realm_app_id), NOW)

    assert claims["aud"] == "none"


@pytest.mark.parametrize(
    "hours, lifetime_seconds",
    [(24, 86400), (2, 7200), (0.5, 1800), (1.25, 4500), (0, 3600), ("", 3600), (None, 86400)],
)
def test_exp_follows_user_jwt_expiration(hours, lifetime_seconds):
    claims = user_jwt_claims(make_user(), make_app(userJWTExpiration=hours), NOW)

    assert claims["exp"] == int(NOW + lifetime_seconds)


def test_exp_defaults_to_24_hours_without_setting():
    app = make_app()
    del app["userJWTExpiration"]

    claims = user_jwt_claims(make_user(), app, NOW)

    assert claims["exp"] == int(NOW) + 24 * 3600


def test_email_claim_only_with_metadata_email():
    without = user_jwt_claims(make_user(), make_app(metaDataEmail=False), NOW)
    with_email = user_jwt_claims(make_user(), make_app(metaDataEmail=True), NOW)

    assert "email" not in without
    assert with_email["email"] == HANDLE


def test_nested_metadata_path_gives_nested_claim():
    app = make_app(metaData=[{"fieldName": "name", "path": "user_data.name", "required": True}])
    user = make_user(metaData={"user_data": {"name": "Ann", "team": "blue"}})

    claims = user_jwt_claims(user, app, NOW)

    assert claims["user_data"] == {"name": "Ann", "team": "blue"}


def test_stored_metadata_keys_become_claims():
    app = make_app(metaData=[{"fieldName": "name", "path": "name", "required": False}])
    user = make_user(metaData={"name": "Ann", "plan": "gold"})

    claims = user_jwt_claims(user, app, NOW)

    assert claims["name"] == "Ann"
    assert claims["plan"] == "gold"


@pytest.mark.parametrize("metadata", [None, {}, {"user_data": {}}, {"user_data": {"name": ""}}])
def test_missing_required_field_gives_none(metadata):
    app = make_app(metaData=[{"fieldName": "name", "path": "user_data.name", "required": True}])

    assert user_jwt_claims(make_user(metaData=metadata), app, NOW) is None


def test_missing_optional_field_is_left_out():
    app = make_app(metaData=[{"fieldName": "name", "path": "user_data.name", "required": False}])

    claims = user_jwt_claims(make_user(metaData={}), app, NOW)

    assert "user_data" not in claims


def test_email_field_takes_handle_at_its_path():
    app = make_app(metaData=[{"fieldName": "email", "path": "contact.email", "required": True}])

    claims = user_jwt_claims(make_user(metaData={}), app, NOW)

    assert claims["contact"] == {"email": HANDLE}
    assert "email" not in claims


def test_anonymous_user_gets_placeholders():
    app = make_app(
        metaData=[
            {"fieldName": "name", "path": "user_data.name", "required": True},
            {"fieldName": "email", "path": "contact.email", "required": True},
        ]
    )
    user = make_user(handle="ANON_5c7e2a", metaData={"user_data": {"name": "Eve"}})

    claims = user_jwt_claims(user, app, NOW)

    assert claims["sub"] == "ANON_5c7e2a"
    assert claims["user_data"] == {"name": "ANON_name"}
    assert claims["contact"] == {"email": "ANON_email"}


def test_anonymous_user_stored_metadata_never_used():
    user = make_user(handle="ANON_5c7e2a", metaData={"role": "admin", "sub": "victim@example.com"})

    claims = user_jwt_claims(user, make_app(), NOW)

    assert "role" not in claims
    assert claims["sub"] == "ANON_5c7e2a"


def test_metadata_cannot_override_registered_claims():
    stolen = {
        "sub": "victim@example.com",
        "aud": "other-realm-app",
        "exp": 9_999_999_999,
        "iat": 1,
        "iss": "https://attacker.example",
        "nbf": 1,
        "jti": "chosen",
    }
    app = make_app(
        realmAppId="application-0-abcde",
        metaData=[{"fieldName": "sub", "path": "sub", "required": False}],
    )

    claims = user_jwt_claims(make_user(metaData={**stolen, "plan": "gold"}), app, NOW)

    assert claims["sub"] == HANDLE
    assert claims["aud"] == "application-0-abcde"
    assert claims["exp"] == int(NOW) + 24 * 3600
    assert claims["iat"] == int(NOW)
    assert claims["iss"] == ISSUER
    assert "nbf" not in claims
    assert "jti" not in claims
    assert claims["plan"] == "gold"


def test_user_name_claim_only_when_enabled():
    user = make_user(userName="ann")

    enabled = user_jwt_claims(user, make_app(userNamesEnabled=True), NOW)
    disabled = user_jwt_claims(user, make_app(userNamesEnabled=False), NOW)
    unset = user_jwt_claims(make_user(), make_app(userNamesEnabled=True), NOW)

    assert enabled["userName"] == "ann"
    assert "userName" not in disabled
    assert "userName" not in unset


def test_claims_leave_stored_metadata_unchanged():
    app = make_app(metaData=[{"fieldName": "email", "path": "contact.email", "required": True}])
    metadata = {"user_data": {"name": "Ann"}}
    user = make_user(metaData=metadata)

    user_jwt_claims(user, app, NOW)

    assert metadata == {"user_data": {"name": "Ann"}}


# The signed token


@pytest.fixture(scope="module")
def app_key_pair():
    private64, public64 = generate_app_key_pair()
    public_key = serialization.load_pem_public_key(base64.b64decode(public64))
    return UserJwtKey(private_key64=private64), public_key


def test_issued_jwt_verifies_with_app_public_key(app_key_pair):
    key, public_key = app_key_pair
    app = make_app(realmAppId="application-0-abcde", userJWTExpiration=1)

    token = issue_user_jwt(make_user(metaData={"plan": "gold"}), app, key)
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience="application-0-abcde")

    assert claims["sub"] == HANDLE
    assert claims["email"] == HANDLE
    assert claims["plan"] == "gold"
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 3600


def test_issued_jwt_header_names_key(app_key_pair):
    key, public_key = app_key_pair

    token = issue_user_jwt(make_user(), make_app(), key)
    header = jwt.get_unverified_header(token)

    assert header["alg"] == "RS256"
    assert header["kid"] == thumbprint(public_key)


def test_issued_jwt_fails_with_other_key(app_key_pair):
    key, _ = app_key_pair
    _, other_public64 = generate_app_key_pair()
    other_public_key = serialization.load_pem_public_key(base64.b64decode(other_public64))

    token = issue_user_jwt(make_user(), make_app(), key)

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_public_key, algorithms=["RS256"], audience="none")


def test_issue_without_required_metadata_gives_none(app_key_pair):
    key, _ = app_key_pair
    app = make_app(metaData=[{"fieldName": "name", "path": "name", "required": True}])

    assert issue_user_jwt(make_user(metaData={}), app, key) is None


def test_metadata_cannot_replace_email_or_user_name_claims():
    app = {
        "appId": "a" * 32,
        "metaDataEmail": True,
        "userNamesEnabled": True,
        "metaData": [{"path": "email", "fieldName": "contact", "required": False}],
    }
    user = {"handle": "real@example.com", "userName": "real", "metaData": {"email": "boss@example.com", "userName": "boss"}}

    claims = user_jwt_claims(user, app, 1_000_000)

    assert claims["email"] == "real@example.com"
    assert claims["userName"] == "real"


def test_declared_email_field_carries_handle():
    app = {"appId": "a" * 32, "metaDataEmail": True, "metaData": [{"path": "profile.mail", "fieldName": "email"}]}
    user = {"handle": "real@example.com", "metaData": {"email": "boss@example.com"}}

    claims = user_jwt_claims(user, app, 1_000_000)

    assert claims["profile"] == {"mail": "real@example.com"}
    assert "email" not in claims


def test_email_claim_is_never_user_metadata():
    app = {"appId": "a" * 32, "metaDataEmail": False, "metaData": [{"path": "email", "fieldName": "contact"}]}
    user = {"handle": "real@example.com", "metaData": {"email": "ceo@example.com"}}

    claims = user_jwt_claims(user, app, 1_000_000)

    assert "email" not in claims
