"""The server's secrets: from Azure Key Vault, or from a local development store.

With `KEY_VAULT_URL` set, every secret is read from that vault through `SecretClient` and
`DefaultAzureCredential` (managed identity in Azure, the developer's login locally). Otherwise
each secret is a file of the same name in `LOCAL_SECRETS_DIR`, created by
`python -m cosync init`. Secrets are loaded together, once per process, and reloaded after
`SECRETS_CACHE_SECONDS` so that a rotated secret is picked up without a restart.

A rotated server key keeps the tokens it signed valid for an overlap: the previous key's public
half goes into `server-previous-public-key` and the end of the overlap into
`server-previous-key-valid-until` (docs/key-rotation.md).
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import secrets as random_source
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cosync.settings import get_settings

log = logging.getLogger(__name__)

# Secret names, identical in Key Vault and in the local store.
SERVER_PRIVATE_KEY = "server-private-key"
SERVER_KEY_PASSPHRASE = "server-key-passphrase"
ENCRYPTION_KEY = "encryption-key"
SENDGRID_API_KEY = "sendgrid-api-key"
SERVER_PREVIOUS_PUBLIC_KEY = "server-previous-public-key"
SERVER_PREVIOUS_KEY_VALID_UNTIL = "server-previous-key-valid-until"

REQUIRED_SECRETS = (SERVER_PRIVATE_KEY, SERVER_KEY_PASSPHRASE, ENCRYPTION_KEY)
SERVER_KEY_BITS = 3072


class MissingSecretError(RuntimeError):
    """A required secret is absent from its store."""


class InvalidSecretError(MissingSecretError):
    """A secret that is present but unusable. Start-up stops on it as on a missing secret."""


@dataclass(frozen=True)
class ServerSecrets:
    server_private_key_pem: bytes
    server_key_passphrase: bytes
    encryption_key: str
    sendgrid_api_key: str | None
    # The server key that signed tokens before the last rotation, and the end of their overlap.
    server_previous_public_key_pem: bytes | None = None
    server_previous_key_valid_until: datetime.datetime | None = None


class SecretSource(Protocol):
    description: str

    def get(self, name: str) -> str | None:
        """Return the secret's value, or None when the store has no such secret."""


class LocalSource:
    """One file per secret in a directory: the local development store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"local secret directory {directory}"

    def get(self, name: str) -> str | None:
        path = self.directory / name
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return value or None


class KeyVaultSource:
    """Secrets read from Azure Key Vault with the real `SecretClient`."""

    def __init__(self, vault_url: str, credential: Any = None, **client_options: Any) -> None:
        # Imported here so that local runs and cold starts without Key Vault skip the Azure SDK.
        from azure.keyvault.secrets import SecretClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self.client = SecretClient(vault_url=vault_url, credential=credential, **client_options)
        self.description = f"Key Vault {vault_url}"

    def get(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            secret = self.client.get_secret(name)
        except ResourceNotFoundError:
            return None
        return secret.value or None


def load_secrets(source: SecretSource) -> ServerSecrets:
    """Read every secret from `source`; raise MissingSecretError naming the first one absent.

    An unusable previous server key or end date raises InvalidSecretError.
    """
    optional = (SENDGRID_API_KEY, SERVER_PREVIOUS_PUBLIC_KEY, SERVER_PREVIOUS_KEY_VALID_UNTIL)
    values = {name: source.get(name) for name in (*REQUIRED_SECRETS, *optional)}
    for name in REQUIRED_SECRETS:
        if values[name] is None:
            raise MissingSecretError(
                f"secret {name!r} is missing from {source.description}; "
                "create it (see docs/deploy.md) or run `python -m cosync init` for local development"
            )
    previous_pem, valid_until = _previous_server_key(values, source)
    return ServerSecrets(
        server_private_key_pem=values[SERVER_PRIVATE_KEY].encode("ascii"),
        server_key_passphrase=values[SERVER_KEY_PASSPHRASE].encode("utf-8"),
        encryption_key=values[ENCRYPTION_KEY],
        sendgrid_api_key=values[SENDGRID_API_KEY],
        server_previous_public_key_pem=previous_pem,
        server_previous_key_valid_until=valid_until,
    )


def _previous_server_key(
    values: dict[str, str | None], source: SecretSource
) -> tuple[bytes | None, datetime.datetime | None]:
    """Check the previous server key and its end date, which are set together or not at all."""
    pem, until = values[SERVER_PREVIOUS_PUBLIC_KEY], values[SERVER_PREVIOUS_KEY_VALID_UNTIL]
    if pem is None and until is None:
        return None, None
    if pem is None or until is None:
        present, absent = (
            (SERVER_PREVIOUS_PUBLIC_KEY, SERVER_PREVIOUS_KEY_VALID_UNTIL)
            if until is None
            else (SERVER_PREVIOUS_KEY_VALID_UNTIL, SERVER_PREVIOUS_PUBLIC_KEY)
        )
        raise InvalidSecretError(
            f"secret {present!r} in {source.description} needs {absent!r} as well; "
            "set both or delete both (see docs/key-rotation.md)"
        )
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidSecretError(
            f"secret {SERVER_PREVIOUS_PUBLIC_KEY!r} in {source.description} is not an RSA public key "
            "in PEM form (-----BEGIN PUBLIC KEY-----)"
        )
    try:
        valid_until = parse_valid_until(until)
    except ValueError as error:
        raise InvalidSecretError(
            f"secret {SERVER_PREVIOUS_KEY_VALID_UNTIL!r} in {source.description}: {error}"
        ) from None
    return pem.encode("ascii"), valid_until


def parse_valid_until(text: str) -> datetime.datetime:
    """Parse the end of an overlap: an ISO 8601 date-time with offset, or a date meaning 00:00 UTC.

    Raise ValueError for anything else, because a time without an offset would depend on the
    server's time zone.
    """
    stripped = text.strip()
    try:
        moment = datetime.datetime.fromisoformat(stripped)
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc) if len(stripped) == 10 else None
    if moment is None:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time with offset such as 2026-03-01T00:00:00Z")
    return moment.astimezone(datetime.timezone.utc)


def default_source() -> SecretSource:
    settings = get_settings()
    if settings.key_vault_url:
        return KeyVaultSource(settings.key_vault_url)
    return LocalSource(settings.local_secrets_dir)


class _SecretCache:
    """The process-wide secrets and the time they were loaded."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: ServerSecrets | None = None
        self.loaded_at = 0.0
        self.source: SecretSource | None = None


_cache = _SecretCache()


def get_secrets() -> ServerSecrets:
    """Return the cached secrets, loading them on first use and after the time-to-live.

    The first load raises its error. A later reload that fails keeps the previous secrets for
    another time-to-live and logs a warning, so that a short Key Vault outage does not fail
    every request while the cached secrets are still valid.
    """
    ttl = get_settings().secrets_cache_seconds
    with _cache.lock:
        if _cache.value is not None and time.monotonic() - _cache.loaded_at < ttl:
            return _cache.value

        if _cache.source is None:
            _cache.source = default_source()
        # Any error of the pluggable source (Azure SDK, file system, a missing secret) means that
        # the reload failed, so the handler below is deliberately broad.
        try:
            value = load_secrets(_cache.source)
        except Exception as error:
            if _cache.value is None:
                raise
            _cache.loaded_at = time.monotonic()
            log.warning(
                "reloading server secrets from %s failed, keeping the previous secrets for "
                "another %s s: %s",
                _cache.source.description,
                ttl,
                error,
            )
            return _cache.value

        _cache.value = value
        _cache.loaded_at = time.monotonic()
        log.info("loaded server secrets from %s", _cache.source.description)
        return value


def use_source(source: SecretSource | None) -> None:
    """Replace the secret source (None restores the default) and drop the cached secrets."""
    with _cache.lock:
        _cache.source = source
        _cache.value = None


def generate_server_secrets() -> dict[str, str]:
    """Create a new server key, its passphrase and an encryption key, keyed by secret name.

    The key is RSA-3072 in a passphrase-protected PEM, the kind that
    `openssl genrsa -aes128 -out key.pem 3072` writes.
    """
    passphrase = random_source.token_urlsafe(32)
    return {
        SERVER_PRIVATE_KEY: generate_server_key_pem(passphrase),
        SERVER_KEY_PASSPHRASE: passphrase,
        ENCRYPTION_KEY: base64.urlsafe_b64encode(random_source.token_bytes(32)).decode("ascii"),
    }


def generate_server_key_pem(passphrase: str) -> str:
    """Create an RSA-3072 server key as PEM text encrypted with `passphrase`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=SERVER_KEY_BITS)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
    return pem.decode("ascii")


def rotated_server_secrets(current: ServerSecrets, valid_until: datetime.datetime) -> dict[str, str]:
    """Return the secret values that replace the server key, keyed by secret name.

    The new key is encrypted with the current passphrase, so that the switch changes one secret
    (`server-private-key`) and no worker ever loads a key with the wrong passphrase. The current
    key's public half verifies the tokens it signed until `valid_until`.
    """
    from cosync.keys import load_server_key

    current_key = load_server_key(current.server_private_key_pem, current.server_key_passphrase)
    previous_pem = current_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    moment = valid_until.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        SERVER_PREVIOUS_PUBLIC_KEY: previous_pem.decode("ascii"),
        SERVER_PREVIOUS_KEY_VALID_UNTIL: moment,
        SERVER_PRIVATE_KEY: generate_server_key_pem(current.server_key_passphrase.decode("utf-8")),
    }


def write_secret_files(directory: Path, values: dict[str, str]) -> None:
    """Write one file per secret, readable only by the current user."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    for name, value in values.items():
        path = directory / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # os.open applies the mode only to a new file, so an existing (now empty) one is narrowed
        # before the secret is written. os.chmod, unlike os.fchmod, also exists on Windows.
        os.chmod(path, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value)


def create_local_secrets(directory: Path) -> bool:
    """Create the local development store unless it already contains the required secrets."""
    source = LocalSource(directory)
    present = [name for name in REQUIRED_SECRETS if source.get(name) is not None]
    if len(present) == len(REQUIRED_SECRETS):
        return False
    if present:
        raise MissingSecretError(
            f"{source.description} contains only {', '.join(present)}; "
            "restore the missing files or remove the directory to start afresh"
        )
    write_secret_files(directory, generate_server_secrets())
    return True
