"""Typed settings, read once per process from environment variables.

Under Azure Functions these are the Function App's application settings; under `func start`
they come from the "Values" of `local.settings.json`. Secrets are not settings: see
`cosync.secrets`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class SettingsError(RuntimeError):
    """A setting is missing or has an invalid value."""


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str  # "" when unset; `cosync.db` raises SettingsError on first use
    mongodb_database: str
    key_vault_url: str | None
    local_secrets_dir: Path
    secrets_cache_seconds: float
    app_cache_seconds: float  # how long a worker reuses an app document; 0 reads it every time
    public_base_url: str
    server_name: str
    noreply_email: str
    outbox_dir: Path
    sendgrid_api_host: str
    twilio_api_base_url: str
    max_body_bytes: int
    mongodb_timeout_ms: int
    apple_keys_url: str  # Apple's JWK set for Sign in with Apple ID tokens
    google_keys_url: str  # Google's JWK set for Google Sign-In ID tokens
    max_import_bytes: int
    forgot_password_response_ms: int
    applog_retention_days: int  # 0 keeps audit records forever


def _integer(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"setting {name} must be at least {minimum}, got {value}")
    return value


def _text(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def read_settings() -> Settings:
    """Read the settings from the environment without caching them."""
    return Settings(
        mongodb_uri=_text("MONGODB_URI", ""),
        mongodb_database=_text("MONGODB_DATABASE", "cosyncjwt"),
        key_vault_url=_text("KEY_VAULT_URL", "") or None,
        local_secrets_dir=Path(_text("LOCAL_SECRETS_DIR", ".secrets")),
        secrets_cache_seconds=_integer("SECRETS_CACHE_SECONDS", 300, 0),
        app_cache_seconds=_integer("APP_CACHE_SECONDS", 30, 0),
        public_base_url=_text("PUBLIC_BASE_URL", "http://127.0.0.1:7071").rstrip("/"),
        server_name=_text("SERVER_NAME", "CosyncJWT"),
        noreply_email=_text("NOREPLY_EMAIL", "no-reply@example.com"),
        outbox_dir=Path(_text("OUTBOX_DIR", ".data/outbox")),
        sendgrid_api_host=_text("SENDGRID_API_HOST", "https://api.sendgrid.com"),
        twilio_api_base_url=_text("TWILIO_API_BASE_URL", "https://api.twilio.com"),
        max_body_bytes=_integer("MAX_BODY_BYTES", 100 * 1024, 1024),
        mongodb_timeout_ms=_integer("MONGODB_TIMEOUT_MS", 5000, 100),
        apple_keys_url=_text("APPLE_KEYS_URL", "https://appleid.apple.com/auth/keys"),
        google_keys_url=_text("GOOGLE_KEYS_URL", "https://www.googleapis.com/oauth2/v3/certs"),
        max_import_bytes=_integer("MAX_IMPORT_BYTES", 10 * 1024 * 1024, 1024),
        forgot_password_response_ms=_integer("FORGOT_PASSWORD_RESPONSE_MS", 1500, 0),
        applog_retention_days=_integer("APPLOG_RETENTION_DAYS", 90, 0),
    )


@functools.cache
def get_settings() -> Settings:
    """Return the process-wide settings, read on first use."""
    return read_settings()


def is_encrypted_or_local(url: str) -> bool:
    """Tell whether credentials sent to `url` stay private: https, or plain http to a local test
    server on this machine."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
