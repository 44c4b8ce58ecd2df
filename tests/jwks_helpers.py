"""Helpers for the JWKS and key rotation tests: the served issuer, login, and verification the
way a customer's backend does it, with PyJWKClient and the discovery document."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from cosync.settings import get_settings
from flows import digest


@pytest.fixture
def issuer_base(api_server: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Make PUBLIC_BASE_URL the address of the test server, so the served URLs can be fetched."""
    monkeypatch.setenv("PUBLIC_BASE_URL", api_server)
    get_settings.cache_clear()
    return api_server


def login(api: Any, app: dict[str, Any], handle: str, password: str = "correct horse") -> dict[str, str]:
    response = api.post(
        "/api/appuser/login", headers={"app-token": app["appToken"]}, json={"handle": handle, "password": digest(password)}
    )
    assert response.status_code == 200, response.text
    return response.json()


def discovery(api: Any, app_id: str) -> dict[str, Any]:
    response = api.get(f"/api/apps/{app_id}/.well-known/openid-configuration")
    assert response.status_code == 200, response.text
    return response.json()


def verify(api: Any, app_id: str, token: str, audience: str = "none") -> dict[str, Any]:
    """Verify a user JWT as a backend would: discovery document, then its JWK Set by `kid`."""
    document = discovery(api, app_id)
    client = jwt.PyJWKClient(document["jwks_uri"], cache_jwk_set=False)
    signing_key = client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=document["id_token_signing_alg_values_supported"],
        audience=audience,
        issuer=document["issuer"],
    )
