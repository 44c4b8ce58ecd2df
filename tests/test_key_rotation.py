"""Key rotation with overlap: per-app keys (route and CLI) and the server key."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from keyvault_fake import FakeKeyVault, StaticTokenCredential, unique_vault_url

from cosync import db, secrets
from cosync.cli import main as cli_main
from cosync.keys import load_app_public_key, load_public_key_pem, load_server_key, thumbprint
from cosync.secrets import InvalidSecretError, KeyVaultSource, load_secrets
from cosync.services.app_keys import RETIREMENT_MARGIN
from cosync.settings import get_settings
from cosync.tokens import issue_server_secret, server_public_key
from flows import audit_log, error, register_user
from jwks_helpers import issuer_base, login, verify  # noqa: F401 (issuer_base is a fixture)

ROOT = Path(__file__).resolve().parent.parent
HANDLE = "rio@example.com"


@pytest.fixture
def user_app(api, new_app, issuer_base):
    app = new_app()
    register_user(api, app, HANDLE)
    return app


def _rotate(api, server_secret, app_id, **fields):
    return api.post("/api/app/rotateAppKey", headers={"server-secret": server_secret}, json={"appId": app_id, **fields})


def _published_kids(api, app_id):
    return [key["kid"] for key in api.get(f"/api/apps/{app_id}/jwks.json").json()["keys"]]


def _stored(app_id):
    return db.collection(db.APPS).find_one({"appId": app_id})


def _end_overlap(app_id):
    """Move the replaced keys' retirement dates into the past, as time passing would."""
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    retired = _stored(app_id)["appRetiredKeys"]
    for entry in retired:
        entry["publishedUntil"] = past
    db.collection(db.APPS).update_one({"appId": app_id}, {"$set": {"appRetiredKeys": retired}})


# Per-app keys through the operator route


def test_rotation_keeps_old_and_new_tokens_valid(api, user_app, server_secret):
    app_id = user_app["appId"]
    old_token = login(api, user_app, HANDLE)["jwt"]

    response = _rotate(api, server_secret, app_id)
    new_token = login(api, user_app, HANDLE)["jwt"]

    assert response.status_code == 200
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid == response.json()["kid"]
    assert new_kid != old_kid
    assert _published_kids(api, app_id) == [new_kid, old_kid]
    assert verify(api, app_id, old_token)["sub"] == HANDLE
    assert verify(api, app_id, new_token)["sub"] == HANDLE


def test_after_overlap_only_new_token_verifies(api, user_app, server_secret):
    app_id = user_app["appId"]
    old_token = login(api, user_app, HANDLE)["jwt"]
    _rotate(api, server_secret, app_id)
    new_token = login(api, user_app, HANDLE)["jwt"]

    _end_overlap(app_id)

    assert _published_kids(api, app_id) == [jwt.get_unverified_header(new_token)["kid"]]
    assert verify(api, app_id, new_token)["sub"] == HANDLE
    with pytest.raises(jwt.PyJWKClientError):
        verify(api, app_id, old_token)


def test_rotation_response_and_retirement_date(api, user_app, server_secret):
    app_id = user_app["appId"]
    db.collection(db.APPS).update_one({"appId": app_id}, {"$set": {"userJWTExpiration": 2}})
    old_kid = thumbprint(load_app_public_key(user_app["appPublicKey"]))
    before = datetime.datetime.now(datetime.timezone.utc)

    response = _rotate(api, server_secret, app_id)

    after = datetime.datetime.now(datetime.timezone.utc)
    body = response.json()
    assert set(body) == {"appId", "kid", "appPublicKey", "previousKeys"}
    assert body["appId"] == app_id
    assert body["kid"] == thumbprint(load_app_public_key(body["appPublicKey"]))
    assert [entry["kid"] for entry in body["previousKeys"]] == [old_kid]
    until = datetime.datetime.fromisoformat(body["previousKeys"][0]["publishedUntil"].replace("Z", "+00:00"))
    overlap = datetime.timedelta(hours=2) + RETIREMENT_MARGIN
    assert before + overlap - datetime.timedelta(milliseconds=1) <= until <= after + overlap
    assert RETIREMENT_MARGIN == datetime.timedelta(minutes=10)


def test_new_key_is_rsa_2048(api, user_app, server_secret):
    body = _rotate(api, server_secret, user_app["appId"]).json()

    key = load_app_public_key(body["appPublicKey"])
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert key.public_numbers().e == 65537


def test_legacy_app_public_key_is_current_key(api, user_app, server_secret):
    body = _rotate(api, server_secret, user_app["appId"]).json()

    read = api.get(f"/api/app/appId/{user_app['appId']}", headers={"server-secret": server_secret}).json()

    assert read["appPublicKey"] == body["appPublicKey"]
    assert read["appPublicKey"] != user_app["appPublicKey"]
    assert "appRetiredKeys" not in read
    token = login(api, user_app, HANDLE)["jwt"]
    assert jwt.decode(token, load_app_public_key(read["appPublicKey"]), algorithms=["RS256"], audience="none")


def test_end_user_view_hides_retired_keys(api, user_app, server_secret):
    _rotate(api, server_secret, user_app["appId"])

    response = api.get("/api/appuser/getApplication", headers={"app-token": user_app["appToken"]})

    assert response.status_code == 200
    assert "appRetiredKeys" not in response.json()


def test_second_rotation_publishes_three_keys(api, user_app, server_secret):
    app_id = user_app["appId"]
    first = thumbprint(load_app_public_key(user_app["appPublicKey"]))
    second = _rotate(api, server_secret, app_id).json()["kid"]

    third = _rotate(api, server_secret, app_id).json()

    assert [entry["kid"] for entry in third["previousKeys"]] == [first, second]
    assert _published_kids(api, app_id) == [third["kid"], first, second]


def test_rotation_drops_expired_retired_keys(api, user_app, server_secret):
    app_id = user_app["appId"]
    second = _rotate(api, server_secret, app_id).json()["kid"]
    _end_overlap(app_id)

    third = _rotate(api, server_secret, app_id).json()

    assert [entry["kid"] for entry in third["previousKeys"]] == [second]
    assert [entry["kid"] for entry in _stored(app_id)["appRetiredKeys"]] == [second]


@pytest.mark.parametrize("flag", [True, "true"])
def test_revoke_previous_publishes_only_new_key(api, user_app, server_secret, flag):
    app_id = user_app["appId"]
    old_token = login(api, user_app, HANDLE)["jwt"]
    _rotate(api, server_secret, app_id)

    body = _rotate(api, server_secret, app_id, revokePrevious=flag).json()

    assert body["previousKeys"] == []
    assert _published_kids(api, app_id) == [body["kid"]]
    with pytest.raises(jwt.PyJWKClientError):
        verify(api, app_id, old_token)
    assert verify(api, app_id, login(api, user_app, HANDLE)["jwt"])["sub"] == HANDLE


def test_rotation_is_audited(api, user_app, server_secret):
    body = _rotate(api, server_secret, user_app["appId"]).json()

    entry = audit_log(db.get_database()).find_one({"appId": user_app["appId"], "action": "rotateAppKey"})

    assert entry["status"] == "success"
    assert entry["logType"] == "app"
    assert json.loads(entry["value"]) == {"handle": None, "kid": body["kid"], "revokePrevious": False}


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"appId": None}, error(403, "missing parameter")),
        ({"appId": 7}, error(403, "missing parameter")),
        ({"appId": "f" * 32}, error(401, "app no longer exist")),
        ({"revokePrevious": "yes"}, error(602, "invalid data")),
        ({"revokePrevious": 1}, error(602, "invalid data")),
    ],
)
def test_rotation_request_errors_change_nothing(api, user_app, server_secret, fields, expected):
    before = _stored(user_app["appId"])

    response = api.post(
        "/api/app/rotateAppKey", headers={"server-secret": server_secret}, json={"appId": user_app["appId"], **fields}
    )

    assert response.status_code == 400
    assert response.json() == expected
    assert _stored(user_app["appId"]) == before


@pytest.mark.parametrize("header", ["", "forged", "app-token"])
def test_rotation_needs_server_secret(api, user_app, header):
    before = _stored(user_app["appId"])
    value = user_app["appToken"] if header == "app-token" else header
    headers = {"server-secret": value} if value else {}

    response = api.post("/api/app/rotateAppKey", headers=headers, json={"appId": user_app["appId"]})

    assert response.status_code == (401 if value else 403)
    assert response.json() == error(400, "invalid admin token")
    assert _stored(user_app["appId"]) == before


def test_suspended_app_can_rotate(api, user_app, server_secret):
    db.collection(db.APPS).update_one({"appId": user_app["appId"]}, {"$set": {"status": "suspended"}})

    response = _rotate(api, server_secret, user_app["appId"])

    assert response.status_code == 200
    assert api.get(f"/api/apps/{user_app['appId']}/jwks.json").status_code == 404


# Per-app keys through the CLI


def _cli(environment, *args):
    env = {**os.environ, **environment}
    return subprocess.run(
        [sys.executable, "-m", "cosync", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_rotate_key(api, user_app, environment):
    app_id = user_app["appId"]
    old_token = login(api, user_app, HANDLE)["jwt"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    result = _cli(environment, "apps", "rotate-key", app_id, "--json")

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [entry["kid"] for entry in body["previousKeys"]] == [old_kid]
    assert _published_kids(api, app_id) == [body["kid"], old_kid]
    assert verify(api, app_id, old_token)["sub"] == HANDLE
    new_token = login(api, user_app, HANDLE)["jwt"]
    assert jwt.get_unverified_header(new_token)["kid"] == body["kid"]


def test_cli_rotate_key_text_output(api, user_app, environment):
    old_kid = thumbprint(load_app_public_key(user_app["appPublicKey"]))

    result = _cli(environment, "apps", "rotate-key", user_app["appId"], "--revoke-previous")

    assert result.returncode == 0, result.stderr
    new_kid = _published_kids(api, user_app["appId"])[0]
    assert result.stdout == f"new key     {new_kid}\n"
    assert old_kid not in result.stdout


def test_cli_rotate_key_unknown_app(environment, issuer_base):
    result = _cli(environment, "apps", "rotate-key", "f" * 32)

    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"error: no app {'f' * 32}")
    assert result.stdout == ""


# The server key


@pytest.fixture
def own_secrets(environment, tmp_path, monkeypatch):
    """A copy of the test secrets that this test may rotate; the server in the thread uses it."""
    directory = tmp_path / "secrets"
    shutil.copytree(environment["LOCAL_SECRETS_DIR"], directory)
    monkeypatch.setenv("LOCAL_SECRETS_DIR", str(directory))
    get_settings.cache_clear()
    secrets.use_source(None)
    return directory


def _reload_secrets():
    secrets.use_source(None)


def _rotate_server_key(*args):
    status = cli_main(["server-key", "rotate", *args])
    _reload_secrets()
    return status


def _get_application(api, app_token):
    return api.get("/api/appuser/getApplication", headers={"app-token": app_token})


def _get_user(api, access_token):
    return api.get("/api/appuser/getUser", headers={"access-token": access_token})


def test_server_key_overlap_accepts_previous_tokens(api, user_app, own_secrets, capsys):
    old_access = login(api, user_app, HANDLE)["access-token"]
    old_kid = thumbprint(server_public_key())

    assert _rotate_server_key("--valid-until", "2999-01-01") == 0

    new_kid = thumbprint(server_public_key())
    assert new_kid != old_kid
    new_access = login(api, user_app, HANDLE)["access-token"]
    assert jwt.get_unverified_header(new_access)["kid"] == new_kid
    assert _get_application(api, user_app["appToken"]).status_code == 200
    assert _get_user(api, old_access).status_code == 200
    assert _get_user(api, new_access).status_code == 200
    assert (own_secrets / "server-previous-key-valid-until").read_text() == "2999-01-01T00:00:00Z"
    assert capsys.readouterr().out.startswith(f"rotated the server key in {own_secrets}/;")


def test_server_key_after_overlap_rejects_previous_tokens(api, user_app, own_secrets):
    old_access = login(api, user_app, HANDLE)["access-token"]
    _rotate_server_key("--valid-until", "2999-01-01")
    new_access = login(api, user_app, HANDLE)["access-token"]

    (own_secrets / "server-previous-key-valid-until").write_text("2000-01-01T00:00:00Z")
    _reload_secrets()

    assert _get_application(api, user_app["appToken"]).json() == error(400, "invalid app token")
    assert _get_user(api, old_access).status_code == 400
    assert _get_user(api, old_access).json() == error(405, "invalid access token")
    assert _get_user(api, new_access).status_code == 200


def test_server_key_overlap_ends_without_reload(api, user_app, own_secrets, monkeypatch):
    old_access = login(api, user_app, HANDLE)["access-token"]
    _rotate_server_key("--valid-until", "2999-01-01")
    monkeypatch.setattr("cosync.tokens.time.time", lambda: 32_503_680_001.0)  # 3000-01-01

    assert _get_user(api, old_access).json() == error(405, "invalid access token")


def test_server_token_without_kid_tries_previous_key(api, user_app, own_secrets):
    # Tokens of the reference server carry no `kid`; one signed by the previous key still works.
    claims = jwt.decode(user_app["appToken"], options={"verify_signature": False})
    current = secrets.get_secrets()
    old_key = load_server_key(current.server_private_key_pem, current.server_key_passphrase)
    legacy = jwt.encode(claims, old_key, algorithm="RS256")
    _rotate_server_key("--valid-until", "2999-01-01")

    assert _get_application(api, legacy).status_code == 200


def test_server_token_with_known_kid_forged_rejected(api, user_app, own_secrets):
    claims = jwt.decode(user_app["appToken"], options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": thumbprint(server_public_key())})

    response = _get_application(api, forged)

    assert response.status_code == 400
    assert response.json() == error(400, "invalid app token")


@pytest.mark.parametrize("kid", ["unknown-kid", 7])
def test_server_token_with_unknown_kid_rejected(api, user_app, own_secrets, kid):
    claims = jwt.decode(user_app["appToken"], options={"verify_signature": False})
    current = secrets.get_secrets()
    key = load_server_key(current.server_private_key_pem, current.server_key_passphrase)
    token = _sign_raw({"alg": "RS256", "typ": "JWT", "kid": kid}, claims, key)

    assert _get_application(api, token).json() == error(400, "invalid app token")


def _sign_raw(header, claims, key):
    """Sign a JWS by hand, so the header may contain values that PyJWT rejects when encoding."""
    def encode(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{encode(header)}.{encode(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_server_key_rotate_refuses_during_overlap(own_secrets, capsys):
    _rotate_server_key("--valid-until", "2999-01-01")
    key_before = (own_secrets / "server-private-key").read_text()

    status = _rotate_server_key("--valid-until", "2999-06-01")

    assert status == 1
    assert "the previous server key still verifies its tokens until 2999-01-01T00:00:00+00:00" in capsys.readouterr().err
    assert (own_secrets / "server-private-key").read_text() == key_before


def test_server_key_rotate_replace_previous(own_secrets):
    _rotate_server_key("--valid-until", "2999-01-01")
    middle_kid = thumbprint(server_public_key())

    assert _rotate_server_key("--valid-until", "2999-06-01", "--replace-previous") == 0

    assert secrets.get_secrets().server_previous_key_valid_until == datetime.datetime(2999, 6, 1, tzinfo=datetime.timezone.utc)
    previous = secrets.get_secrets().server_previous_public_key_pem
    assert thumbprint(load_public_key_pem(previous)) == middle_kid


@pytest.mark.parametrize("value", ["2000-01-01", "tomorrow", "2999-01-01T00:00:00"])
def test_server_key_rotate_rejects_bad_date(own_secrets, capsys, value):
    key_before = (own_secrets / "server-private-key").read_text()

    assert _rotate_server_key("--valid-until", value) == 1

    assert capsys.readouterr().err.startswith("error: invalid --valid-until: ")
    assert (own_secrets / "server-private-key").read_text() == key_before
    assert not (own_secrets / "server-previous-public-key").exists()


def test_server_key_rotate_keeps_passphrase(own_secrets):
    passphrase_before = (own_secrets / "server-key-passphrase").read_text()

    _rotate_server_key("--valid-until", "2999-01-01")

    assert (own_secrets / "server-key-passphrase").read_text() == passphrase_before
    assert server_public_key().key_size == 3072


def test_server_key_rotate_for_key_vault(own_secrets, tmp_path, capsys):
    out = tmp_path / "vault-files"
    key_before = (own_secrets / "server-private-key").read_text()

    assert cli_main(["server-key", "rotate", "--valid-until", "2999-01-01", "--for-key-vault", str(out), "--vault-name", "kv1"]) == 0

    printed = capsys.readouterr().out
    names = ["server-previous-public-key", "server-previous-key-valid-until", "server-private-key"]
    commands = [line.strip() for line in printed.splitlines() if line.strip().startswith("az ")]
    assert commands == [f"az keyvault secret set --vault-name kv1 --name {name} --file {out / name}" for name in names]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)
    assert (own_secrets / "server-private-key").read_text() == key_before


def test_reissue_app_tokens_signs_with_new_key(api, user_app, own_secrets, server_secret, capsys):
    _rotate_server_key("--valid-until", "2999-01-01")
    capsys.readouterr()

    assert cli_main(["server-key", "reissue-app-tokens"]) == 0

    assert f"reissued the app token of {user_app['appId']}\n" in capsys.readouterr().out
    read = api.get(f"/api/app/appId/{user_app['appId']}", headers={"server-secret": issue_server_secret()}).json()
    assert read["appToken"] != user_app["appToken"]
    assert jwt.get_unverified_header(read["appToken"])["kid"] == thumbprint(server_public_key())
    assert _get_application(api, read["appToken"]).status_code == 200
    assert cli_main(["server-key", "reissue-app-tokens"]) == 0
    assert f"reissued the app token of {user_app['appId']}\n" not in capsys.readouterr().out


# Loading the previous server key


def _vault_with(values):
    base = {
        "server-private-key": "unused here",
        "server-key-passphrase": "unused here",
        "encryption-key": "unused here",
    }
    vault = FakeKeyVault(unique_vault_url(), {**base, **values})
    return KeyVaultSource(vault.vault_url, credential=StaticTokenCredential(), transport=vault)


def _public_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_keyvault_previous_key_loads_with_date():
    pem = _public_pem()
    source = _vault_with({"server-previous-public-key": pem, "server-previous-key-valid-until": "2026-03-01T12:00:00+01:00"})

    loaded = load_secrets(source)

    assert loaded.server_previous_public_key_pem == pem.encode()
    assert loaded.server_previous_key_valid_until == datetime.datetime(2026, 3, 1, 11, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"server-previous-public-key": "PEM"}, "secret 'server-previous-public-key' in Key Vault {url} needs 'server-previous-key-valid-until' as well"),
        ({"server-previous-key-valid-until": "2026-03-01"}, "secret 'server-previous-key-valid-until' in Key Vault {url} needs 'server-previous-public-key' as well"),
        ({"server-previous-public-key": "not a key", "server-previous-key-valid-until": "2026-03-01"}, "secret 'server-previous-public-key' in Key Vault {url} is not an RSA public key"),
        ({"server-previous-public-key": "KEY", "server-previous-key-valid-until": "next week"}, "secret 'server-previous-key-valid-until' in Key Vault {url}: 'next week' is not an ISO 8601"),
        ({"server-previous-public-key": "KEY", "server-previous-key-valid-until": "2026-03-01T00:00:00"}, "secret 'server-previous-key-valid-until' in Key Vault {url}: '2026-03-01T00:00:00' is not"),
    ],
)
def test_keyvault_previous_key_invalid(values, message):
    values = {name: _public_pem() if value == "KEY" else value for name, value in values.items()}
    source = _vault_with(values)

    with pytest.raises(InvalidSecretError) as caught:
        load_secrets(source)

    url = source.description.removeprefix("Key Vault ")
    assert str(caught.value).startswith(message.format(url=url))
