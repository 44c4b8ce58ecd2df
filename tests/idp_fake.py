"""A local stand-in for the Apple and Google JWK set endpoints, and ID tokens signed by it.

The fake serves `/apple/keys` and `/google/keys` on 127.0.0.1, so the real `jwt.PyJWKClient`
in the server fetches keys from it instead of appleid.apple.com or www.googleapis.com.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local_server import local_http_server

APPLE_ISSUER = "https://appleid.apple.com"
GOOGLE_ISSUER = "https://accounts.google.com"
APPLE_AUDIENCE = "com.example.app"
GOOGLE_AUDIENCE = "1234-web.apps.googleusercontent.com"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class FakeIdentityProvider:
    """Serves one signing key per provider; records the paths it was asked for."""

    url: str
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=lambda: {"apple": _new_key(), "google": _new_key()})
    requested_paths: list[str] = field(default_factory=list)

    def keys_url(self, provider: str) -> str:
        return f"{self.url}/{provider}/keys"

    def kid(self, provider: str) -> str:
        return f"{provider}-key-1"

    def key_set(self, provider: str) -> dict[str, Any]:
        return {"keys": [_public_jwk(self.keys[provider], self.kid(provider))]}

    def public_pem(self, provider: str) -> bytes:
        return self.keys[provider].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, provider: str, address: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": APPLE_ISSUER if provider == "apple" else GOOGLE_ISSUER,
            "aud": APPLE_AUDIENCE if provider == "apple" else GOOGLE_AUDIENCE,
            "sub": f"{provider}-user-{address}",
            "email": address,
            # Apple sends the flag as a string, Google as a boolean.
            "email_verified": "true" if provider == "apple" else True,
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def id_token(
        self, provider: str, address: str, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **overrides: Any
    ) -> str:
        """Return an RS256 ID token; `None` in `overrides` removes a claim."""
        return jwt.encode(
            self.claims(provider, address, **overrides),
            key or self.keys[provider],
            algorithm="RS256",
            headers={"kid": kid or self.kid(provider)},
        )

    def unsigned_token(self, provider: str, email: str) -> str:
        header = {"alg": "none", "kid": self.kid(provider), "typ": "JWT"}
        body = self.claims(provider, email)
        return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(body).encode())}."

    def hmac_token_with_public_key(self, provider: str, email: str) -> str:
        """Return an HS256 token whose secret is the provider's public key PEM (CVE-2022-23541 class)."""
        header = {"alg": "HS256", "kid": self.kid(provider), "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(self.claims(provider, email)).encode())}"
        signature = hmac.new(self.public_pem(provider), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"


def _handler_for(fake: FakeIdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
            fake.requested_paths.append(self.path)
            provider = self.path.strip("/").split("/")[0]
            if self.path != f"/{provider}/keys" or provider not in fake.keys:
                self.send_error(404)
                return
            body = json.dumps(fake.key_set(provider)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # silence the per-request access log

    return Handler


@contextlib.contextmanager
def running_fake_idp() -> Iterator[FakeIdentityProvider]:
    """Serve a FakeIdentityProvider on a free 127.0.0.1 port for the duration of the block."""
    with local_http_server() as server:
        fake = FakeIdentityProvider(url=f"http://127.0.0.1:{server.server_port}")
        server.RequestHandlerClass = _handler_for(fake)
        yield fake
