"""The public documents a backend needs to verify an app's user JWTs without our help.

Each app is its own issuer, `{PUBLIC_BASE_URL}/api/apps/{appId}`. Its OpenID Connect discovery
document sits at `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4)
and names the JWK Set at `{issuer}/jwks.json`.
"""

from __future__ import annotations

from typing import Any

from cosync.dates import utc_now
from cosync.services.app_keys import jwk_set, load_published_app
from cosync.tokens import ALGORITHMS, issuer_for

# The claims a user JWT can carry besides the app's own metadata claims.
CLAIMS_SUPPORTED = ["iss", "sub", "aud", "exp", "iat", "email", "userName"]


def openid_configuration(app_id: str) -> dict[str, Any]:
    """Return the discovery document of an active app; raise HTTP 404 for any other.

    There is no authorization endpoint because apps log users in through our own API, not an
    OAuth flow. `response_types_supported` is listed because Discovery §3 requires it.
    """
    app = load_published_app(app_id)
    issuer = issuer_for(app["appId"])
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "claims_supported": CLAIMS_SUPPORTED,
    }


def app_jwk_set(app_id: str) -> dict[str, Any]:
    """Return the JWK Set of an active app; raise HTTP 404 for any other."""
    return jwk_set(load_published_app(app_id), utc_now())
