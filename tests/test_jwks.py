"""The per-app issuer: OpenID Connect discovery, the JWK Set, `kid` and `iss` in tokens, and the
per-app `aud` setting."""

from __future__ import annotations

import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cosync import db
from cosync.keys import load_app_public_key, signing_jwk, thumbprint
from cosync.tokens import server_public_key
from flows import error, register_user
from jwks_helpers import discovery, issuer_base, login, verify  # noqa: F401 (issuer_base is a fixture)

APP_NOT_FOUND = error(401, "app no longer exist")


@pytest.fixture
def user_app(api, new_app, issuer_base):
    app = new_app()
    register_user(api, app, "kim@example.com")
    return app


def test_login_jwt_verifies_with_served_jwks(api, user_app):
    token = login(api, user_app, "kim@example.com")["jwt"]

    claims = verify(api, user_app["appId"], token)

    assert claims["sub"] == "kim@example.com"
    assert claims["iss"] == f"{api.base_url}/api/apps/{user_app['appId']}"
    assert claims["aud"] == "none"


def test_discovery_document_names_issuer_and_jwks(api, user_app):
    app_id = user_app["appId"]

    document = discovery(api, app_id)

    assert document == {
        "issuer": f"{api.base_url}/api/apps/{app_id}",
        "jwks_uri": f"{api.base_url}/api/apps/{app_id}/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "email", "userName"],
    }


def test_jwks_contains_current_app_key(api, user_app):
    response = api.get(f"/api/apps/{user_app['appId']}/jwks.json")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    public_key = load_app_public_key(user_app["appPublicKey"])
    assert response.json() == {"keys": [signing_jwk(public_key)]}
    assert response.json()["keys"][0]["kid"] == thumbprint(public_key)
    assert response.json()["keys"][0]["use"] == "sig"
    assert response.json()["keys"][0]["alg"] == "RS256"


@pytest.mark.parametrize(
    "path, max_age",
    [("/.well-known/openid-configuration", 3600), ("/jwks.json", 300)],
)
def test_public_documents_are_cacheable(api, user_app, path, max_age):
    response = api.get(f"/api/apps/{user_app['appId']}{path}")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == f"public, max-age={max_age}"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks.json"])
def test_unknown_app_gets_json_404(api, issuer_base, path):
    response = api.get(f"/api/apps/{uuid.uuid4().hex}{path}")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == APP_NOT_FOUND


@pytest.mark.parametrize("status, body", [("suspended", error(402, "app is suspended")), ("migrated", error(413, "app is migrated"))])
@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks.json"])
def test_inactive_app_gets_json_404(api, user_app, status, body, path):
    db.collection(db.APPS).update_one({"appId": user_app["appId"]}, {"$set": {"status": status}})

    response = api.get(f"/api/apps/{user_app['appId']}{path}")

    assert response.status_code == 404
    assert response.json() == body


def test_public_documents_ignore_token_headers(api, user_app):
    headers = {"access-token": "not-a-token", "server-secret": "forged", "app-token": "x.y.z"}

    response = api.get(f"/api/apps/{user_app['appId']}/jwks.json", headers=headers)

    assert response.status_code == 200
    assert len(response.json()["keys"]) == 1


def test_forged_jwt_with_known_kid_rejected(api, user_app):
    genuine = login(api, user_app, "kim@example.com")["jwt"]
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header = jwt.get_unverified_header(genuine)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "sub": "boss@example.com"}, other_key, algorithm="RS256", headers={"kid": header["kid"]})

    with pytest.raises(jwt.InvalidSignatureError):
        verify(api, user_app["appId"], forged)


def test_forged_jwt_with_unknown_kid_rejected(api, user_app):
    claims = jwt.decode(login(api, user_app, "kim@example.com")["jwt"], options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": thumbprint(other_key.public_key())})

    with pytest.raises(jwt.PyJWKClientError):
        verify(api, user_app["appId"], forged)


def test_jwt_of_other_app_fails_issuer_check(api, new_app, user_app):
    other = new_app()
    register_user(api, other, "kim@example.com")
    token = login(api, other, "kim@example.com")["jwt"]
    # Both apps' documents are fetched: the token's key is only in the other app's JWK Set.
    own_keys = jwt.PyJWKClient(discovery(api, user_app["appId"])["jwks_uri"], cache_jwk_set=False)

    with pytest.raises(jwt.PyJWKClientError):
        own_keys.get_signing_key_from_jwt(token)
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token,
            load_app_public_key(other["appPublicKey"]),
            algorithms=["RS256"],
            audience="none",
            issuer=discovery(api, user_app["appId"])["issuer"],
        )


def test_every_server_token_names_server_key(api, user_app, server_secret):
    session = login(api, user_app, "kim@example.com")
    server_kid = thumbprint(server_public_key())

    for token in (server_secret, user_app["appToken"], session["access-token"]):
        header = jwt.get_unverified_header(token)
        assert header["kid"] == server_kid
        assert header["alg"] == "RS256"


def test_user_jwt_kid_matches_published_key(api, user_app):
    token = login(api, user_app, "kim@example.com")["jwt"]
    keys = api.get(f"/api/apps/{user_app['appId']}/jwks.json").json()["keys"]

    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]


# The per-app `aud`


def _set_audience(api, server_secret, body):
    return api.post("/api/app/setJwtAudience", headers={"server-secret": server_secret}, json=body)


def test_jwt_audience_setting_changes_aud(api, user_app, server_secret):
    response = _set_audience(api, server_secret, {"appId": user_app["appId"], "jwtAudience": "api://orders"})

    assert response.status_code == 200
    assert response.json() == {"appId": user_app["appId"], "jwtAudience": "api://orders", "aud": "api://orders"}
    token = login(api, user_app, "kim@example.com")["jwt"]
    assert verify(api, user_app["appId"], token, audience="api://orders")["aud"] == "api://orders"
    with pytest.raises(jwt.InvalidAudienceError):
        verify(api, user_app["appId"], token, audience="none")


@pytest.mark.parametrize("cleared", [None, ""])
def test_jwt_audience_cleared_restores_default(api, user_app, server_secret, cleared):
    db.collection(db.APPS).update_one({"appId": user_app["appId"]}, {"$set": {"realmAppId": "application-0-abcde"}})
    _set_audience(api, server_secret, {"appId": user_app["appId"], "jwtAudience": "api://orders"})

    response = _set_audience(api, server_secret, {"appId": user_app["appId"], "jwtAudience": cleared})

    assert response.json() == {"appId": user_app["appId"], "jwtAudience": None, "aud": "application-0-abcde"}
    token = login(api, user_app, "kim@example.com")["jwt"]
    assert verify(api, user_app["appId"], token, audience="application-0-abcde")["aud"] == "application-0-abcde"


@pytest.mark.parametrize(
    "value",
    [42, True, ["api://a"], {"aud": "x"}, "two words", "tab\there", "line\nbreak", "a" * 257, "nul\x00"],
)
def test_jwt_audience_rejects_invalid_value(api, user_app, server_secret, value):
    response = _set_audience(api, server_secret, {"appId": user_app["appId"], "jwtAudience": value})

    assert response.status_code == 400
    assert response.json() == error(602, "invalid data")
    stored = db.collection(db.APPS).find_one({"appId": user_app["appId"]})
    assert "jwtAudience" not in stored


def test_jwt_audience_accepts_longest_value(api, user_app, server_secret):
    response = _set_audience(api, server_secret, {"appId": user_app["appId"], "jwtAudience": "a" * 256})

    assert response.status_code == 200
    assert response.json()["aud"] == "a" * 256


@pytest.mark.parametrize(
    "body, status, expected",
    [
        ({"jwtAudience": "x"}, 400, error(403, "missing parameter")),
        ({"appId": "f" * 32}, 400, error(403, "missing parameter")),
        ({"appId": "f" * 32, "jwtAudience": "x"}, 400, APP_NOT_FOUND),
    ],
)
def test_jwt_audience_request_errors(api, issuer_base, server_secret, body, status, expected):
    response = _set_audience(api, server_secret, body)

    assert response.status_code == status
    assert response.json() == expected


@pytest.mark.parametrize("header", [{}, {"server-secret": "forged"}])
def test_jwt_audience_needs_server_secret(api, user_app, header):
    response = api.post("/api/app/setJwtAudience", headers=header, json={"appId": user_app["appId"], "jwtAudience": "x"})

    assert response.status_code == (401 if header else 403)
    assert response.json() == error(400, "invalid admin token")


def test_jwt_audience_rejects_app_token(api, user_app):
    headers = {"server-secret": user_app["appToken"]}

    response = api.post("/api/app/setJwtAudience", headers=headers, json={"appId": user_app["appId"], "jwtAudience": "x"})

    assert response.status_code == 401
    assert "jwtAudience" not in db.collection(db.APPS).find_one({"appId": user_app["appId"]})
