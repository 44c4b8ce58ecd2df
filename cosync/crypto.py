"""Field encryption, password hashing and verification-code hashing.

Field encryption is AES-256-GCM under a key derived with HKDF-SHA256 from the `encryption-key`
secret. Values written by the reference CosyncJWT server (AES-256-CTR, key = SHA-256 of the same
secret string, stored as base64 of IV and ciphertext) are still readable.

Passwords arrive as the 32-character MD5 hex that the SDKs compute on the client. They are
stored as Argon2id PHC strings; legacy bcrypt hashes of the same MD5 hex still verify and are
reported as needing an upgrade.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re

import bcrypt
from cryptography.exceptions import InvalidKey, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GCM_PREFIX = "gcm1:"
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16

# Chosen for a Flex Consumption instance with about one CPU core. The work is more than the
# OWASP Password Storage Cheat Sheet's minimum (19 MiB, 2 iterations), with one lane for one
# core. Memory stays below glibc's 32 MiB mmap ceiling, above which every hash maps fresh
# pages. The reasoning and the measured verify times are in docs/benchmarks.md. Hashes with
# other parameters still verify and are rehashed at the next login.
ARGON2_MEMORY_KIB = 28 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 1
ARGON2_SALT_BYTES = 16
ARGON2_HASH_BYTES = 32

PASSWORD_PATTERN = re.compile(r"[0-9a-fA-F]{32}")


class DecryptionError(ValueError):
    """A stored value could not be decrypted with the configured encryption key."""


@functools.lru_cache(maxsize=8)
def _derived_key(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode("utf-8")
    )


def encrypt_field(secret: str, plaintext: str, context: str) -> str:
    """Encrypt `plaintext` with AES-256-GCM; `context` (for example the field and app id) is
    authenticated, so a value copied to another field or app fails to decrypt."""
    key = _derived_key(secret, b"cosync field encryption v1")
    nonce = os.urandom(GCM_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return GCM_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_field(secret: str, stored: str, context: str) -> str:
    """Decrypt a value written by `encrypt_field` or by the reference server (AES-256-CTR).

    A malformed value, a wrong key or a wrong context raises DecryptionError.
    """
    if stored.startswith(GCM_PREFIX):
        raw = _decode_base64(stored[len(GCM_PREFIX):], context)
        if len(raw) < GCM_NONCE_BYTES + GCM_TAG_BYTES:
            raise DecryptionError(f"stored value for {context} is too short to be encrypted")
        key = _derived_key(secret, b"cosync field encryption v1")
        try:
            plaintext = AESGCM(key).decrypt(raw[:GCM_NONCE_BYTES], raw[GCM_NONCE_BYTES:], context.encode("utf-8"))
        except InvalidTag:
            raise DecryptionError(f"stored value for {context} does not decrypt with this key") from None
        return plaintext.decode("utf-8")
    return _decrypt_legacy_ctr(secret, stored, context)


def _decode_base64(text: str, context: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise DecryptionError(f"stored value for {context} is not base64") from None


def _decrypt_legacy_ctr(secret: str, stored: str, context: str) -> str:
    # The reference format has no authentication tag, so a wrong key yields garbage instead of an
    # error. Invalid UTF-8 is the only sign of a wrong key that can be detected here.
    raw = _decode_base64(stored, context)
    if len(raw) < 17:
        raise DecryptionError(f"stored value for {context} is too short to be encrypted")
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CTR(raw[:16])).decryptor()
    plaintext = decryptor.update(raw[16:]) + decryptor.finalize()
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError(f"stored value for {context} does not decrypt with this key") from None


def encrypt_legacy_ctr(secret: str, plaintext: str) -> str:
    """Encrypt in the reference server's format: AES-256-CTR under SHA-256 of `secret`, stored
    as base64 of the 16-byte IV and the ciphertext. Only a rollback to that server writes it."""
    iv = os.urandom(16)
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    sealed = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    return base64.b64encode(iv + sealed).decode("ascii")


def is_valid_password_digest(value: object) -> bool:
    """Tell whether `value` is the 32-character MD5 hex that the SDKs send as a password."""
    return isinstance(value, str) and PASSWORD_PATTERN.fullmatch(value) is not None


def hash_password(digest: str) -> str:
    """Hash the client's MD5 hex with Argon2id into a PHC string."""
    kdf = Argon2id(
        salt=os.urandom(ARGON2_SALT_BYTES),
        length=ARGON2_HASH_BYTES,
        iterations=ARGON2_ITERATIONS,
        lanes=ARGON2_LANES,
        memory_cost=ARGON2_MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(digest.encode("utf-8"))


def verify_password(digest: str, stored: str | None) -> tuple[bool, bool]:
    """Check `digest` against a stored hash; return (matches, needs_upgrade_to_argon2id)."""
    if not stored:
        burn_password_check()
        return False, False
    candidate = digest.encode("utf-8")
    if stored.startswith("$argon2id$"):
        try:
            Argon2id.verify_phc_encoded(candidate, stored)
        except (InvalidKey, ValueError):
            return False, False
        return True, _argon2_parameters_outdated(stored)
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(candidate, stored.encode("ascii")), True
        except ValueError:
            return False, False
    burn_password_check()
    return False, False


def _argon2_parameters_outdated(stored: str) -> bool:
    expected = f"$m={ARGON2_MEMORY_KIB},t={ARGON2_ITERATIONS},p={ARGON2_LANES}$"
    return expected not in stored


@functools.cache
def _dummy_hash() -> str:
    return hash_password("0" * 32)


def burn_password_check() -> None:
    """Spend the time of one password verification, so that a request for an unknown account
    takes as long as one for a known account."""
    try:
        Argon2id.verify_phc_encoded(b"f" * 32, _dummy_hash())
    except InvalidKey:
        pass


def hash_code(secret: str, purpose: str, app_id: str, handle: str, code: str) -> str:
    """Return the keyed hash under which a verification code is stored.

    The key comes from the encryption secret, so a copy of the database alone does not allow
    trying the 900 000 possible codes offline.
    """
    key = _derived_key(secret, b"cosync verification code v1")
    message = "\0".join((purpose, app_id, handle, code)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def codes_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("ascii"), right.encode("ascii"))
