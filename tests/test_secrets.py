"""The secret store: Key Vault through the real SecretClient, the cache, and the local store."""

from __future__ import annotations

import base64
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from keyvault_fake import (
    KEY_VAULT_RESOURCE,
    TEST_TENANT_ID,
    TEST_TOKEN,
    FakeKeyVault,
    StaticTokenCredential,
    TokenRequest,
    unique_vault_url,
)

from cosync import secrets
from cosync.secrets import (
    KeyVaultSource,
    LocalSource,
    MissingSecretError,
    ServerSecrets,
    create_local_secrets,
    get_secrets,
    load_secrets,
    use_source,
)
from cosync.settings import get_settings

ALL_SECRETS = {
    "server-private-key": (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIfake\n-----END ENCRYPTED PRIVATE KEY-----"
    ),
    "server-key-passphrase": "correct horse battery staple",
    "encryption-key": "q9Q0n2m5Yx3r7Jc1Kp8Vt4Wz6Bd0Hf2Ls5Ng7Pe9Ru1=",
    "sendgrid-api-key": "SG.vault-key.abcdef",
}
SECRET_NAMES = [
    "server-private-key",
    "server-key-passphrase",
    "encryption-key",
    "sendgrid-api-key",
    "server-previous-public-key",
    "server-previous-key-valid-until",
]


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Settings without Key Vault, so that DefaultAzureCredential is never created."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
    monkeypatch.delenv("KEY_VAULT_URL", raising=False)
    monkeypatch.setenv("LOCAL_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", "300")
    get_settings.cache_clear()
    use_source(None)
    yield
    use_source(None)
    get_settings.cache_clear()


def _vault(values: dict[str, str]) -> tuple[FakeKeyVault, StaticTokenCredential, KeyVaultSource]:
    vault = FakeKeyVault(unique_vault_url(), values)
    credential = StaticTokenCredential()
    source = KeyVaultSource(vault.vault_url, credential=credential, transport=vault)
    return vault, credential, source


def _set_cache_seconds(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    monkeypatch.setenv("SECRETS_CACHE_SECONDS", str(seconds))
    get_settings.cache_clear()


# Key Vault


def test_keyvault_requests_exact_names() -> None:
    vault, _, source = _vault(ALL_SECRETS)

    load_secrets(source)

    assert vault.authorized_secret_names() == SECRET_NAMES
    assert [request.method for request in vault.requests] == ["GET"] * 7
    assert [request.path for request in vault.requests] == [
        "/secrets/server-private-key/",
        "/secrets/server-private-key/",
        "/secrets/server-key-passphrase/",
        "/secrets/encryption-key/",
        "/secrets/sendgrid-api-key/",
        "/secrets/server-previous-public-key/",
        "/secrets/server-previous-key-valid-until/",
    ]
    for request in vault.requests:
        assert list(request.query) == ["api-version"]


def test_keyvault_challenge_then_bearer_token() -> None:
    vault, credential, source = _vault(ALL_SECRETS)

    load_secrets(source)

    # The first request goes out without a token and receives the 401 challenge.
    assert vault.requests[0].authorization is None
    assert [request.authorization for request in vault.requests[1:]] == [f"Bearer {TEST_TOKEN}"] * 6
    assert credential.requests == [
        TokenRequest(scopes=(f"{KEY_VAULT_RESOURCE}/.default",), tenant_id=TEST_TENANT_ID)
    ]


def test_keyvault_load_returns_values() -> None:
    _, _, source = _vault(ALL_SECRETS)

    loaded = load_secrets(source)

    assert loaded == ServerSecrets(
        server_private_key_pem=ALL_SECRETS["server-private-key"].encode("ascii"),
        server_key_passphrase=b"correct horse battery staple",
        encryption_key="q9Q0n2m5Yx3r7Jc1Kp8Vt4Wz6Bd0Hf2Ls5Ng7Pe9Ru1=",
        sendgrid_api_key="SG.vault-key.abcdef",
    )


@pytest.mark.parametrize(
    "missing", ["server-private-key", "server-key-passphrase", "encryption-key"]
)
def test_keyvault_missing_required_secret(missing: str) -> None:
    values = {name: value for name, value in ALL_SECRETS.items() if name != missing}
    vault, _, source = _vault(values)

    with pytest.raises(MissingSecretError) as caught:
        load_secrets(source)

    message = str(caught.value)
    assert message.startswith(f"secret {missing!r} is missing from Key Vault {vault.vault_url};")
    assert missing in message
    assert vault.vault_url in message


def test_keyvault_missing_sendgrid_key_is_none() -> None:
    values = {name: value for name, value in ALL_SECRETS.items() if name != "sendgrid-api-key"}
    vault, _, source = _vault(values)

    loaded = load_secrets(source)

    assert loaded.sendgrid_api_key is None
    assert loaded.encryption_key == ALL_SECRETS["encryption-key"]
    assert vault.authorized_secret_names() == SECRET_NAMES


def test_keyvault_forbidden_is_not_missing() -> None:
    # A permission error raises instead of reading as a missing SendGrid key, which would quietly
    # switch mail delivery to the local outbox.
    vault, _, source = _vault(ALL_SECRETS)
    vault.forbidden.add("sendgrid-api-key")

    with pytest.raises(HttpResponseError) as caught:
        load_secrets(source)

    assert caught.value.status_code == 403


# Cache


def test_get_secrets_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    vault, _, source = _vault(ALL_SECRETS)
    use_source(source)

    first = get_secrets()
    requests_after_first = len(vault.requests)
    second = get_secrets()

    assert second is first
    assert requests_after_first == 7
    assert len(vault.requests) == 7


def test_get_secrets_reloads_after_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_cache_seconds(monkeypatch, 1)
    vault, _, source = _vault(ALL_SECRETS)
    use_source(source)

    first = get_secrets()
    vault.set_secret("encryption-key", "rotated-encryption-key")
    still_cached = get_secrets()
    time.sleep(1.05)
    reloaded = get_secrets()

    assert first.encryption_key == ALL_SECRETS["encryption-key"]
    assert still_cached is first
    assert reloaded.encryption_key == "rotated-encryption-key"
    assert vault.authorized_secret_names() == SECRET_NAMES * 2


def test_get_secrets_ttl_zero_always_reloads(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_cache_seconds(monkeypatch, 0)
    vault, credential, source = _vault(ALL_SECRETS)
    use_source(source)

    get_secrets()
    get_secrets()

    assert vault.authorized_secret_names() == SECRET_NAMES * 2
    # The credential issues one token, which the later requests reuse.
    assert len(credential.requests) == 1


def test_use_source_drops_cache() -> None:
    first_vault, _, first_source = _vault(ALL_SECRETS)
    second_vault, _, second_source = _vault({**ALL_SECRETS, "encryption-key": "second-key"})
    use_source(first_source)
    get_secrets()

    use_source(second_source)
    loaded = get_secrets()

    assert loaded.encryption_key == "second-key"
    assert first_vault.authorized_secret_names() == SECRET_NAMES
    assert second_vault.authorized_secret_names() == SECRET_NAMES


def test_get_secrets_failure_keeps_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_cache_seconds(monkeypatch, 300)
    values = {name: value for name, value in ALL_SECRETS.items() if name != "encryption-key"}
    vault, _, source = _vault(values)
    use_source(source)

    with pytest.raises(MissingSecretError):
        get_secrets()
    vault.set_secret("encryption-key", "created-later")
    loaded = get_secrets()

    assert loaded.encryption_key == "created-later"


def test_get_secrets_reload_failure_keeps_previous(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _set_cache_seconds(monkeypatch, 0)
    vault, _, source = _vault(ALL_SECRETS)
    use_source(source)
    first = get_secrets()
    vault.forbidden.add("encryption-key")
    vault.set_secret("server-key-passphrase", "rotated passphrase")

    during_outage = get_secrets()
    vault.forbidden.clear()
    after_outage = get_secrets()

    assert during_outage is first
    assert after_outage.server_key_passphrase == b"rotated passphrase"
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"reloading server secrets from Key Vault {vault.vault_url} failed, "
        "keeping the previous secrets for another 0 s: "
    )
    assert "Forbidden" in warnings[0]
    assert "rotated passphrase" not in warnings[0]


# Local development store


def test_default_source_is_local_without_vault(tmp_path: Path) -> None:
    assert create_local_secrets(tmp_path / "secrets") is True

    loaded = get_secrets()

    expected_key = (tmp_path / "secrets" / "encryption-key").read_text(encoding="utf-8")
    assert loaded.encryption_key == expected_key
    assert loaded.sendgrid_api_key is None


def test_create_local_secrets_writes_files(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"

    created = create_local_secrets(directory)

    assert created is True
    assert sorted(path.name for path in directory.iterdir()) == [
        "encryption-key",
        "server-key-passphrase",
        "server-private-key",
    ]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_local_server_key_needs_passphrase(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    create_local_secrets(directory)
    loaded = load_secrets(LocalSource(directory))

    assert loaded.server_private_key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(
        loaded.server_private_key_pem, password=loaded.server_key_passphrase
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072
    assert key.public_key().public_numbers().e == 65537

    with pytest.raises(TypeError):
        serialization.load_pem_private_key(loaded.server_private_key_pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(loaded.server_private_key_pem, password=b"wrong")


def test_local_encryption_key_is_32_bytes(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    create_local_secrets(directory)

    loaded = load_secrets(LocalSource(directory))

    assert len(base64.urlsafe_b64decode(loaded.encryption_key)) == 32


def test_create_local_secrets_second_call(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    create_local_secrets(directory)
    before = {path.name: path.read_bytes() for path in directory.iterdir()}

    created_again = create_local_secrets(directory)

    assert created_again is False
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before


def test_create_local_secrets_half_filled(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    create_local_secrets(directory)
    (directory / "encryption-key").unlink()

    with pytest.raises(MissingSecretError) as caught:
        create_local_secrets(directory)

    assert str(caught.value) == (
        f"local secret directory {directory} contains only server-private-key, "
        "server-key-passphrase; restore the missing files or remove the directory to start afresh"
    )
    assert not (directory / "encryption-key").exists()


def test_create_local_secrets_tightens_modes(tmp_path: Path) -> None:
    # An empty file counts as absent and is overwritten. It must not keep its loose mode.
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o755)
    (directory / "encryption-key").write_text("")
    os.chmod(directory / "encryption-key", 0o644)

    assert create_local_secrets(directory) is True

    assert stat.S_IMODE((directory / "encryption-key").stat().st_mode) == 0o600
    assert (directory / "encryption-key").read_text(encoding="utf-8") != ""


def test_local_missing_secret_names_directory(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()

    with pytest.raises(MissingSecretError) as caught:
        load_secrets(LocalSource(directory))

    assert str(caught.value).startswith(
        f"secret 'server-private-key' is missing from local secret directory {directory};"
    )


def test_secret_names_match_constants() -> None:
    assert [
        secrets.SERVER_PRIVATE_KEY,
        secrets.SERVER_KEY_PASSPHRASE,
        secrets.ENCRYPTION_KEY,
        secrets.SENDGRID_API_KEY,
        secrets.SERVER_PREVIOUS_PUBLIC_KEY,
        secrets.SERVER_PREVIOUS_KEY_VALID_UNTIL,
    ] == SECRET_NAMES
