"""Verification of Apple and Google ID tokens (Sign in with Apple, Google Sign-In).

A token is accepted only when it is signed with RS256 by a key of the provider's JWK set
(chosen by the header's `kid`), names the provider as `iss` and one of the app's client ids as
`aud`, has not expired, and, where the provider sends `email_verified`, marks the address as
verified. The JWK sets are fetched with `jwt.PyJWKClient` and cached per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable

import jwt

from cosync.settings import get_settings

APPLE = "apple"
GOOGLE = "google"

# The `iss` values each provider puts in its ID tokens; Google uses both spellings.
ISSUERS = {
    APPLE: ("https://appleid.apple.com",),
    GOOGLE: ("https://accounts.google.com", "accounts.google.com"),
}
ALGORITHMS = ["RS256"]
CLOCK_SKEW_SECONDS = 60
KEY_SET_CACHE_SECONDS = 3600
KEY_SET_TIMEOUT_SECONDS = 10
MAX_TOKEN_LENGTH = 8192


class InvalidIdToken(Exception):
    """The ID token failed signature or claim verification."""


class KeySetUnavailable(Exception):
    """The provider's JWK set could not be fetched, so no token can be verified now."""


@dataclass(frozen=True)
class Identity:
    """The verified claims a sign-in uses: the provider's user id and the e-mail address."""

    subject: str
    email: str | None


_lock = threading.Lock()
_clients: dict[str, jwt.PyJWKClient] = {}


def _key_set_client(url: str) -> jwt.PyJWKClient:
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(
                url, cache_jwk_set=True, lifespan=KEY_SET_CACHE_SECONDS, timeout=KEY_SET_TIMEOUT_SECONDS
            )
            _clients[url] = client
        return client


def _keys_url(provider: str) -> str:
    settings = get_settings()
    return settings.apple_keys_url if provider == APPLE else settings.google_keys_url


def verify_id_token(provider: str, token: str, audiences: Iterable[str]) -> Identity:
    """Verify `token` as an ID token of `provider` issued to one of `audiences`.

    Raises InvalidIdToken for a token that fails any check, and KeySetUnavailable when the
    provider's keys cannot be fetched.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdToken("token is too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidIdToken(f"malformed token: {error}") from None
    # The algorithm is fixed here, never taken from the header: a header naming HS256 would
    # otherwise let a token be signed with the provider's public key as an HMAC secret.
    if header.get("alg") not in ALGORITHMS:
        raise InvalidIdToken(f"algorithm {header.get('alg')!r} is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidIdToken("token header has no kid")

    try:
        signing_key = _key_set_client(_keys_url(provider)).get_signing_key(kid)
    except jwt.PyJWKClientConnectionError as error:
        raise KeySetUnavailable(f"{provider} key set not fetched: {error}") from None
    except jwt.PyJWKClientError as error:
        raise InvalidIdToken(f"no {provider} key with kid {kid!r}: {error}") from None
    if signing_key.key_type != "RSA":
        raise InvalidIdToken(f"{provider} key {kid!r} is not an RSA key")

    try:
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=ALGORITHMS,
            audience=list(audiences),
            issuer=ISSUERS[provider],
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidIdToken(str(error)) from None
    return _identity(claims)


def _identity(claims: dict) -> Identity:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidIdToken("sub is not a string")
    email = claims.get("email")
    if email is not None and not isinstance(email, str):
        raise InvalidIdToken("email is not a string")
    # Apple sends the flag as the string "true" or "false", Google as a JSON boolean.
    if "email_verified" in claims and claims["email_verified"] not in (True, "true"):
        raise InvalidIdToken("email is not verified")
    return Identity(subject=subject, email=email or None)
