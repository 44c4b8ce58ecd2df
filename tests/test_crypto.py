"""Unit tests of field encryption, password and code hashing (`cosync.crypto`) and of app keys
and RFC 7638 thumbprints (`cosync.keys`)."""

from __future__ import annotations

import base64
import hashlib
import os

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from cosync.crypto import (
    DecryptionError,
    decrypt_field,
    encrypt_field,
    hash_code,
    hash_password,
    is_valid_password_digest,
    verify_password,
)
from cosync.keys import (
    generate_app_key_pair,
    load_app_private_key,
    public_jwk,
    seal_app_key,
    thumbprint,
    unseal_app_key,
)

SECRET = "field-encryption-key-for-tests"
OTHER_SECRET = "another-field-encryption-key"
APP_ID = "0123456789abcdef0123456789abcdef"
# MD5 hex of "correct horse", as an SDK sends it.
DIGEST = hashlib.md5(b"correct horse").hexdigest()
WRONG_DIGEST = hashlib.md5(b"battery staple").hexdigest()


def _legacy_encrypt(secret: str, plaintext: str) -> str:
    """Encrypt as the reference server does: AES-256-CTR, key = SHA-256 of the secret text,
    stored as base64 of the 16-byte IV followed by the ciphertext, with no tag."""
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    return base64.b64encode(iv + ciphertext).decode("ascii")


# Field encryption


def test_gcm_round_trip():
    stored = encrypt_field(SECRET, "twilio token ✓", "apps.TWILIOToken:app1")

    assert stored.startswith("gcm1:")
    assert "twilio token" not in stored
    assert decrypt_field(SECRET, stored, "apps.TWILIOToken:app1") == "twilio token ✓"


def test_gcm_uses_fresh_nonce():
    first = encrypt_field(SECRET, "same text", "context")
    second = encrypt_field(SECRET, "same text", "context")

    assert first != second


def test_gcm_value_fails_in_other_context():
    stored = encrypt_field(SECRET, "private key", "apps.appPrivateKey:app1")

    with pytest.raises(DecryptionError):
        decrypt_field(SECRET, stored, "apps.appPrivateKey:app2")
    with pytest.raises(DecryptionError):
        decrypt_field(SECRET, stored, "apps.appPublicKey:app1")


def test_gcm_value_fails_with_wrong_key():
    stored = encrypt_field(SECRET, "private key", "context")

    with pytest.raises(DecryptionError):
        decrypt_field(OTHER_SECRET, stored, "context")


def test_gcm_tampered_value_fails():
    stored = encrypt_field(SECRET, "private key", "context")
    raw = bytearray(base64.b64decode(stored[len("gcm1:"):]))
    raw[-1] ^= 0x01
    tampered = "gcm1:" + base64.b64encode(bytes(raw)).decode("ascii")

    with pytest.raises(DecryptionError):
        decrypt_field(SECRET, tampered, "context")


def test_legacy_ctr_value_decrypts():
    plaintext = "AC0123456789abcdef0123456789abcdef"
    stored = _legacy_encrypt(SECRET, plaintext)

    assert decrypt_field(SECRET, stored, "apps.TWILIOAccountSid:app1") == plaintext


def test_legacy_ctr_ignores_context():
    # The reference format authenticates nothing, so any context reads it.
    stored = _legacy_encrypt(SECRET, "sendgrid key")

    assert decrypt_field(SECRET, stored, "apps.emailExtensionAPIKey:some-app") == "sendgrid key"


def test_legacy_ctr_long_value_decrypts():
    plaintext = base64.b64encode(os.urandom(1200)).decode("ascii")
    stored = _legacy_encrypt(SECRET, plaintext)

    assert decrypt_field(SECRET, stored, "context") == plaintext


@pytest.mark.parametrize("length", [0, 1, 16])
def test_legacy_value_too_short_fails(length):
    stored = base64.b64encode(os.urandom(length)).decode("ascii")

    with pytest.raises(DecryptionError):
        decrypt_field(SECRET, stored, "context")


@pytest.mark.parametrize("stored", ["not base64!", "gcm1:not base64!", "gcm1:" + base64.b64encode(b"short").decode()])
def test_malformed_stored_value_fails(stored):
    with pytest.raises(DecryptionError):
        decrypt_field(SECRET, stored, "context")


# Passwords


def test_hash_password_uses_argon2id_parameters():
    stored = hash_password(DIGEST)

    assert stored.startswith("$argon2id$v=19$m=28672,t=3,p=1$")
    assert DIGEST not in stored


def test_hash_password_salts_each_hash():
    assert hash_password(DIGEST) != hash_password(DIGEST)


def test_argon2id_hash_verifies():
    assert verify_password(DIGEST, hash_password(DIGEST)) == (True, False)


def test_argon2id_hash_rejects_wrong_digest():
    assert verify_password(WRONG_DIGEST, hash_password(DIGEST)) == (False, False)


def test_argon2id_with_old_parameters_needs_upgrade():
    kdf = Argon2id(salt=os.urandom(16), length=32, iterations=1, lanes=1, memory_cost=8 * 1024)
    stored = kdf.derive_phc_encoded(DIGEST.encode("ascii"))

    assert verify_password(DIGEST, stored) == (True, True)


@pytest.mark.parametrize("prefix", [b"2b", b"2a"])
def test_legacy_bcrypt_hash_verifies_and_needs_upgrade(prefix):
    stored = bcrypt.hashpw(DIGEST.encode("ascii"), bcrypt.gensalt(rounds=10, prefix=prefix)).decode("ascii")
    assert stored.startswith("$" + prefix.decode() + "$10$")

    assert verify_password(DIGEST, stored) == (True, True)


def test_legacy_bcrypt_hash_rejects_wrong_digest():
    stored = bcrypt.hashpw(DIGEST.encode("ascii"), bcrypt.gensalt(rounds=10)).decode("ascii")

    matches, _ = verify_password(WRONG_DIGEST, stored)

    assert matches is False


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        DIGEST,
        "$1$salt$hash",
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
        "$argon2id$garbage",
        "$2b$10$tooshort",
    ],
)
def test_unusable_stored_hash_never_matches(stored):
    assert verify_password(DIGEST, stored) == (False, False)


@pytest.mark.parametrize(
    "value, expected",
    [
        (DIGEST, True),
        (DIGEST.upper(), True),
        ("0" * 32, True),
        (DIGEST[:31], False),
        (DIGEST + "0", False),
        (DIGEST[:31] + "g", False),
        (DIGEST + "\n", False),
        ("", False),
        (None, False),
        (12345678901234567890123456789012, False),
        (DIGEST.encode("ascii"), False),
        ([DIGEST], False),
    ],
)
def test_is_valid_password_digest(value, expected):
    assert is_valid_password_digest(value) is expected


# Verification codes


def test_hash_code_is_stable():
    first = hash_code(SECRET, "signup", APP_ID, "ann@example.com", "123456")
    second = hash_code(SECRET, "signup", APP_ID, "ann@example.com", "123456")

    assert first == second
    assert len(first) == 64
    assert "123456" not in first


@pytest.mark.parametrize(
    "changed",
    [
        (OTHER_SECRET, "signup", APP_ID, "ann@example.com", "123456"),
        (SECRET, "reset", APP_ID, "ann@example.com", "123456"),
        (SECRET, "signup", "f" * 32, "ann@example.com", "123456"),
        (SECRET, "signup", APP_ID, "bob@example.com", "123456"),
        (SECRET, "signup", APP_ID, "ann@example.com", "123457"),
    ],
)
def test_hash_code_differs_per_input(changed):
    base = hash_code(SECRET, "signup", APP_ID, "ann@example.com", "123456")

    assert hash_code(*changed) != base


# RSA keys and thumbprints

# The example RSA public key of RFC 7638 §3.1 and the thumbprint the RFC gives for it.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq"
    "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0"
    "fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_E = "AQAB"
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _base64url_to_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _rfc7638_public_key() -> rsa.RSAPublicKey:
    numbers = rsa.RSAPublicNumbers(e=_base64url_to_int(RFC7638_E), n=_base64url_to_int(RFC7638_N))
    return numbers.public_key()


def test_thumbprint_matches_rfc7638_example():
    assert thumbprint(_rfc7638_public_key()) == RFC7638_THUMBPRINT


def test_public_jwk_matches_rfc7638_example():
    assert public_jwk(_rfc7638_public_key()) == {"kty": "RSA", "e": RFC7638_E, "n": RFC7638_N}


def test_generated_app_keys_are_pem_text_in_base64():
    private64, public64 = generate_app_key_pair()
    private_pem = base64.b64decode(private64)
    public_pem = base64.b64decode(public64)

    assert private_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert private_pem.endswith(b"\n-----END RSA PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert public_pem.endswith(b"\n-----END PUBLIC KEY-----")


def test_generated_app_keys_form_2048_bit_pair():
    private64, public64 = generate_app_key_pair()
    private_key = load_app_private_key(private64)
    public_key = serialization.load_pem_public_key(base64.b64decode(public64))

    assert isinstance(public_key, rsa.RSAPublicKey)
    assert private_key.key_size == 2048
    assert public_key.key_size == 2048
    assert public_key.public_numbers() == private_key.public_key().public_numbers()
    assert public_key.public_numbers().e == 65537


def test_generated_app_keys_differ_each_time():
    assert generate_app_key_pair()[0] != generate_app_key_pair()[0]


def test_sealed_app_key_opens_only_for_its_app_and_field():
    private64, _ = generate_app_key_pair()
    sealed = seal_app_key(SECRET, private64, APP_ID, "appPrivateKey")

    assert unseal_app_key(SECRET, sealed, APP_ID, "appPrivateKey") == private64
    with pytest.raises(DecryptionError):
        unseal_app_key(SECRET, sealed, "f" * 32, "appPrivateKey")
    with pytest.raises(DecryptionError):
        unseal_app_key(SECRET, sealed, APP_ID, "appPublicKey")
