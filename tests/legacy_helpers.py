"""Documents and tokens in the formats the reference CosyncJWT server leaves behind.

Every value is computed here from the published algorithms, not with our own code: bcrypt (cost
10, `$2b$`) of the client's MD5 hex, AES-256-CTR under SHA-256 of `encryptKey` stored as base64
of IV and ciphertext, app keys as base64 of PEM text without a trailing newline, RS256 tokens
under the server key without `kid` or `exp`, `__v` version keys and dates of whole seconds.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import time
import uuid
from typing import Any

import bcrypt
import jwt
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cosync.secrets import get_secrets
from flows import digest


def whole_seconds(moment: datetime.datetime | None = None) -> datetime.datetime:
    """Return a UTC time cut to the second, as `new Date().toUTCString()` stores it."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.replace(microsecond=0)


def ctr_encrypt(plaintext: str, encrypt_key: str | None = None) -> str:
    """Encrypt as the reference server does: AES-256-CTR, key SHA-256(encryptKey), base64(IV ‖ ciphertext)."""
    secret = encrypt_key if encrypt_key is not None else get_secrets().encryption_key
    key = hashlib.sha256(secret.encode("utf-8")).digest()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    sealed = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    return base64.b64encode(iv + sealed).decode("ascii")


def ctr_decrypt(stored: str, encrypt_key: str | None = None) -> str:
    """Decrypt as the reference server's `aesDecrypt` does (see `ctr_encrypt`)."""
    secret = encrypt_key if encrypt_key is not None else get_secrets().encryption_key
    raw = base64.b64decode(stored)
    assert len(raw) >= 17, "shorter than the 16-byte IV and one byte"
    decryptor = Cipher(algorithms.AES(hashlib.sha256(secret.encode("utf-8")).digest()), modes.CTR(raw[:16])).decryptor()
    return (decryptor.update(raw[16:]) + decryptor.finalize()).decode("utf-8")


def bcrypt_password(password: str) -> str:
    """Return the bcrypt hash (cost 10, `$2b$`) of the password's MD5 hex."""
    return bcrypt.hashpw(digest(password).encode("ascii"), bcrypt.gensalt(rounds=10, prefix=b"2b")).decode("ascii")


def sign_legacy(claims: dict[str, Any], issued_at: int | None = None) -> str:
    """Sign `claims` with the server key as `jsonwebtoken` 8.5.1 does: RS256, no `kid`, no `exp`."""
    secrets = get_secrets()
    key = serialization.load_pem_private_key(secrets.server_private_key_pem, secrets.server_key_passphrase)
    payload = {**claims, "iat": issued_at if issued_at is not None else int(time.time())}
    return jwt.encode(payload, key, algorithm="RS256")


def legacy_key_pair() -> tuple[str, str]:
    """Return (base64 of PKCS#1 private PEM, base64 of SPKI public PEM), both without a trailing newline."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        base64.b64encode(private_pem.rstrip(b"\n")).decode("ascii"),
        base64.b64encode(public_pem.rstrip(b"\n")).decode("ascii"),
    )


def legacy_app(name: str | None = None, **fields: Any) -> dict[str, Any]:
    """Return an `apps` document as the reference server creates it, plus `_legacy` plaintexts
    (remove `_legacy` before inserting)."""
    app_id = uuid.uuid4().hex
    private64, public64 = legacy_key_pair()
    created = whole_seconds()
    document = {
        "_id": ObjectId(),
        "appId": app_id,
        "name": name or f"Legacy app {app_id[:8]}",
        "status": "active",
        "appToken": sign_legacy({"appId": app_id, "scope": "app"}),
        "appSecret": ctr_encrypt(sign_legacy({"appId": app_id, "scope": "appSecret"})),
        "appPrivateKey": ctr_encrypt(private64),
        "appPublicKey": ctr_encrypt(public64),
        "jwtEnabled": False,
        "signupEnabled": True,
        "signupFlow": "code",
        "invitationEnabled": True,
        "metaData": [],
        "metaDataInvite": [],
        "metaDataEmail": True,
        "locales": ["EN"],
        "userJWTExpiration": 24,
        "createdAt": created,
        "updatedAt": created,
        "__v": 0,
        **fields,
    }
    document["_legacy"] = {"private64": private64, "public64": public64}
    return document


def insert_app(database: Any, document: dict[str, Any]) -> dict[str, Any]:
    """Insert a legacy app document; return it with its `_legacy` plaintexts."""
    stored = {key: value for key, value in document.items() if key != "_legacy"}
    database["apps"].insert_one(stored)
    return document


def legacy_user(app: dict[str, Any], handle: str, password: str | None = "legacy password", **fields: Any) -> dict[str, Any]:
    """Return a `users` document as the reference server's sign-up completion writes it."""
    created = whole_seconds() - datetime.timedelta(days=30)
    document = {
        "_id": ObjectId(),
        "handle": handle,
        "appId": app["appId"],
        "status": "active",
        "locale": "EN",
        "loginProvider": "",
        "metaData": {},
        "createdAt": created,
        "updatedAt": created,
        "__v": 0,
        **fields,
    }
    if password is not None:
        document["password"] = bcrypt_password(password)
    return document


def legacy_access_token(app: dict[str, Any], handle: str) -> str:
    """Return an access token as the reference server mints it: `{handle, appId, scope, iat}`."""
    return sign_legacy({"handle": handle, "appId": app["appId"], "scope": "user"})


def legacy_server_secret(name: str = "CosyncJWT") -> str:
    return sign_legacy({"name": name, "scope": "server"})


def legacy_signup(app: dict[str, Any], handle: str, code: int, password: str = "legacy password", **fields: Any) -> dict[str, Any]:
    """Return a pending `signups` document with its numeric code and bcrypt password."""
    updated = whole_seconds() - datetime.timedelta(hours=1)
    return {
        "_id": ObjectId(),
        "appId": app["appId"],
        "handle": handle,
        "password": bcrypt_password(password),
        "code": code,
        "metaData": {},
        "status": "pending",
        "locale": "EN",
        "createdAt": updated,
        "updatedAt": updated,
        "__v": 0,
        **fields,
    }
