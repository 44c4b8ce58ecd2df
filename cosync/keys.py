"""RSA keys: the server key, per-app key pairs, their stored form and RFC 7638 thumbprints."""

from __future__ import annotations

import base64
import functools
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cosync.crypto import decrypt_field, encrypt_field

# The Swift SDK's signature check decodes only 2048- and 3072-bit RS256 signatures.
APP_KEY_BITS = 2048


@functools.lru_cache(maxsize=4)
def load_server_key(pem: bytes, passphrase: bytes) -> rsa.RSAPrivateKey:
    """Parse the passphrase-protected server key; results are cached per process.

    The RSA consistency checks of a 3072-bit key take 0.1 to 0.4 s, which every cold start
    would pay. They are skipped because only the operator can write this key to the secret
    store, and `python -m cosync init` and `server-key rotate` generate it with cryptography.
    """
    key = serialization.load_pem_private_key(pem, password=passphrase, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the server private key must be an RSA key")
    return key


def generate_app_key_pair() -> tuple[str, str]:
    """Create an app key pair and return (private, public) as base64 of PKCS#1 and SPKI PEM text.

    That is the plaintext form in which CosyncJWT stores and publishes app keys.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=APP_KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _pem_to_base64(private_pem), _pem_to_base64(public_pem)


def _pem_to_base64(pem: bytes) -> str:
    # The reference server's PEM text has no trailing newline; keep the same bytes.
    return base64.b64encode(pem.rstrip(b"\n")).decode("ascii")


def seal_app_key(secret: str, key64: str, app_id: str, field: str) -> str:
    return encrypt_field(secret, key64, f"apps.{field}:{app_id}")


def unseal_app_key(secret: str, stored: str, app_id: str, field: str) -> str:
    return decrypt_field(secret, stored, f"apps.{field}:{app_id}")


@functools.lru_cache(maxsize=256)
def load_app_private_key(key64: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(base64.b64decode(key64), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an app private key must be an RSA key")
    return key


@functools.lru_cache(maxsize=256)
def load_public_key_pem(pem: bytes) -> rsa.RSAPublicKey:
    """Parse an RSA public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`)."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key must be an RSA key")
    return key


def load_app_public_key(key64: str) -> rsa.RSAPublicKey:
    """Parse an app public key in its published form, base64 of SPKI PEM text."""
    return load_public_key_pem(base64.b64decode(key64))


def _base64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {"kty": "RSA", "e": _base64url_uint(numbers.e), "n": _base64url_uint(numbers.n)}


def signing_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """Return the JWK (RFC 7517) of an RS256 verification key, with its thumbprint as `kid`."""
    return {**public_jwk(key), "kid": thumbprint(key), "use": "sig", "alg": "RS256"}


@functools.lru_cache(maxsize=256)
def _thumbprint_of_numbers(e: int, n: int) -> str:
    # RFC 7638 §3: the required members in lexicographic order, no whitespace.
    canonical = json.dumps(
        {"e": _base64url_uint(e), "kty": "RSA", "n": _base64url_uint(n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def thumbprint(key: rsa.RSAPublicKey) -> str:
    """Return the RFC 7638 SHA-256 thumbprint, used as the `kid` of tokens the key signs."""
    numbers = key.public_numbers()
    return _thumbprint_of_numbers(numbers.e, numbers.n)


def public_key_base64(private_key: rsa.RSAPrivateKey) -> str:
    """Return the public half of an app key in its published form, base64 of SPKI PEM text."""
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _pem_to_base64(pem)
