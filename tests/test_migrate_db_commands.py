"""`python -m cosync db check` and `db migrate`, run as subprocesses on databases of their own
built as the reference CosyncJWT server leaves them."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pymongo
import pytest

from conftest import reset_caches
from cosync.crypto import decrypt_field, encrypt_field
from cosync.secrets import get_secrets

from flows import audit_log, digest
from legacy_helpers import (
    ctr_decrypt,
    ctr_encrypt,
    insert_app,
    legacy_access_token,
    legacy_app,
    legacy_signup,
    legacy_user,
    whole_seconds,
)

ROOT = Path(__file__).resolve().parent.parent
EXIT_BLOCKERS = 2


@pytest.fixture
def legacy_database(environment):
    """A database of its own on the test server, dropped afterwards."""
    name = f"cosync_legacy_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(environment["MONGODB_URI"], tz_aware=True)
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def cli(environment, legacy_database):
    env = {**os.environ, **environment, "MONGODB_DATABASE": legacy_database.name}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cosync", "db", *args], cwd=ROOT, env={**env, "LOCAL_SECRETS_DIR": os.environ["LOCAL_SECRETS_DIR"]},
            capture_output=True, text=True, timeout=300,
        )

    return run


def _json(result: subprocess.CompletedProcess, status: int = 0) -> dict:
    assert result.returncode == status, result.stdout + result.stderr
    return json.loads(result.stdout)


def _snapshot(database) -> dict:
    """Every document and index name of the database, to compare before and after a command."""
    return {
        name: (sorted((json.dumps(document, sort_keys=True, default=str) for document in database[name].find())),
               sorted(database[name].index_information()))
        for name in sorted(database.list_collection_names())
    }


def _resolvable_database(database) -> dict:
    """Insert an app whose duplicates `migrate` can all resolve; return the app."""
    app = insert_app(database, legacy_app())
    database["users"].insert_many([
        legacy_user(app, "ada@example.com"),
        legacy_user(app, "Mixed@Example.COM"),
        legacy_user(app, "Social@Example.com", password=None, loginProvider="apple", socialUserId="001.apple"),
        legacy_user(app, "Case@example.com"),
        legacy_user(app, "case@example.com"),
        legacy_user(app, "ANON_4c1d"),
    ])
    older = whole_seconds() - datetime.timedelta(hours=5)
    database["signups"].insert_many([
        legacy_signup(app, "pending@example.com", 111111, updatedAt=older, createdAt=older),
        legacy_signup(app, "pending@example.com", 222222),
        legacy_signup(app, "other@example.com", 333333),
    ])
    database["invites"].insert_one({"handle": "guest@example.com", "appId": app["appId"], "senderHandle": "superuser",
                                    "senderUserId": "superuser", "code": 444444, "status": "pending", "__v": 0})
    return app


def test_check_reports_legacy_database(cli, legacy_database):
    app = _resolvable_database(legacy_database)
    before = _snapshot(legacy_database)

    report = _json(cli("check", "--json"))

    assert _snapshot(legacy_database) == before
    assert report["apps"] == {"total": 1, "byStatus": {"active": 1}}
    assert report["users"] == {"total": 6, "perApp": [{"appId": app["appId"], "name": app["name"], "users": 6}]}
    assert report["pending"] == {"signups": 3, "invites": 1, "resetPasswords": 0}
    assert report["legacyFormats"]["bcryptPasswords"] == {"users": 5, "signups": 3}
    assert report["legacyFormats"]["ctrFields"]["appPrivateKey"] == 1
    assert report["legacyFormats"]["ctrFields"]["TWILIOToken"] == 0
    assert report["legacyFormats"]["clearCodes"] == {"signups": 3, "invites": 1, "resetpasswords": 0}
    assert report["legacyFormats"]["versionKeys"]["users"] == 6
    assert report["keys"] == {"undecryptable": [], "appTokensNotVerified": [], "appTokensWithoutKid": 1}
    assert [item["handle"] for item in report["handles"]["renames"]] == ["Mixed@Example.COM"]
    assert [item["handle"] for item in report["handles"]["keptSocial"]] == ["Social@Example.com"]
    assert report["handles"]["caseDuplicates"] == [{"appId": app["appId"], "handles": ["Case@example.com", "case@example.com"]}]
    [duplicate] = report["duplicates"]
    assert duplicate["collection"] == "signups"
    assert duplicate["key"] == {"appId": app["appId"], "handle": "pending@example.com"}
    assert duplicate["resolvable"] is True
    assert "users.appId_handle_unique" in report["indexes"]["missing"]
    assert report["indexes"]["blocked"] == []
    assert report["blockers"] == []


def test_check_text_output(cli, legacy_database):
    _resolvable_database(legacy_database)

    result = cli("check")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "apps: 1 (active 1)"
    assert "bcrypt passwords: 5 users, 3 sign-ups (become Argon2id at the next login)" in lines
    assert not [line for line in lines if line.startswith("blocker:")]


def test_dry_run_writes_nothing(cli, legacy_database):
    _resolvable_database(legacy_database)
    before = _snapshot(legacy_database)

    result = _json(cli("migrate", "--dry-run", "--json"))

    assert _snapshot(legacy_database) == before
    assert result["dryRun"] is True
    assert [item["normalised"] for item in result["renamedHandles"]] == ["mixed@example.com"]
    assert len(result["archivedSignups"]) == 1


def test_migrate_resolves_and_repeats_as_noop(cli, legacy_database):
    app = _resolvable_database(legacy_database)
    older = legacy_database["signups"].find_one({"handle": "pending@example.com", "code": 111111})

    first = _json(cli("migrate", "--json"))
    after_first = _snapshot(legacy_database)
    second = _json(cli("migrate", "--json"))

    assert legacy_database["users"].count_documents({}) == 6
    handles = sorted(user["handle"] for user in legacy_database["users"].find())
    assert handles == ["ANON_4c1d", "Case@example.com", "Social@Example.com", "ada@example.com",
                       "case@example.com", "mixed@example.com"]
    assert [item["handle"] for item in first["renamedHandles"]] == ["Mixed@Example.COM"]
    assert first["archivedSignups"] == [str(older["_id"])]
    assert [signup["code"] for signup in legacy_database["signups"].find({"handle": "pending@example.com"})] == [222222]
    archived = legacy_database["migrationarchive"].find_one({"_id": f"signups:{older['_id']}"})
    assert archived["document"]["code"] == 111111
    assert "users.appId_handle_unique" in first["indexes"]["created"]
    assert "signups.appId_handle_unique" in first["indexes"]["created"]
    assert first["indexes"]["notCreated"] == []
    assert first["unresolved"]["caseDuplicates"] == [{"appId": app["appId"], "handles": ["Case@example.com", "case@example.com"]}]
    assert second["renamedHandles"] == []
    assert second["archivedSignups"] == []
    assert second["indexes"]["created"] == []
    assert _snapshot(legacy_database) == after_first


def test_migrate_audits_changes(cli, legacy_database):
    app = _resolvable_database(legacy_database)

    _json(cli("migrate", "--json"))

    [per_app] = audit_log(legacy_database).find({"appId": app["appId"], "action": "dbMigrate"})
    [database_wide] = audit_log(legacy_database).find({"appId": "*", "action": "dbMigrate"})
    assert json.loads(per_app["value"])["renamedHandles"] == 1
    assert json.loads(database_wide["value"])["archivedSignups"] == 1


def _blocked_database(database) -> dict:
    app = insert_app(database, legacy_app(name="Twin"))
    insert_app(database, legacy_app(name="Twin"))
    first = legacy_user(app, "dup@example.com")
    second = legacy_user(app, "dup@example.com")
    database["users"].insert_many([first, second, legacy_user(app, "ok@example.com")])
    return app


def test_check_lists_blocking_duplicates(cli, legacy_database):
    app = _blocked_database(legacy_database)

    report = _json(cli("check", "--json"), EXIT_BLOCKERS)

    assert sorted(report["indexes"]["blocked"]) == ["apps.name_unique", "users.appId_handle_unique"]
    keys = [item["key"] for item in report["duplicates"]]
    assert {"name": "Twin"} in keys
    assert {"appId": app["appId"], "handle": "dup@example.com"} in keys
    assert len(report["blockers"]) == 2
    assert "password" not in json.dumps(report["duplicates"])


def test_migrate_leaves_blocking_duplicates(cli, legacy_database):
    _blocked_database(legacy_database)

    first = _json(cli("migrate", "--json"), EXIT_BLOCKERS)
    after_first = _snapshot(legacy_database)
    second = _json(cli("migrate", "--json"), EXIT_BLOCKERS)

    assert legacy_database["users"].count_documents({}) == 3
    assert legacy_database["apps"].count_documents({}) == 2
    assert sorted(first["indexes"]["notCreated"]) == ["apps.name_unique", "users.appId_handle_unique"]
    assert "apps.appId_unique" in first["indexes"]["present"]
    assert len(first["unresolved"]["duplicates"]) == 2
    assert second["indexes"]["created"] == []
    assert _snapshot(legacy_database) == after_first


def test_check_rejects_wrong_keys(cli, legacy_database):
    app = legacy_app(TWILIOToken=ctr_encrypt("t" * 32, encrypt_key="another deployment's key"))
    app["appPrivateKey"] = ctr_encrypt(app["_legacy"]["private64"], encrypt_key="another deployment's key")
    app["appToken"] = "eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6ImFwcCJ9.c2ln"
    insert_app(legacy_database, app)

    report = _json(cli("check", "--json"), EXIT_BLOCKERS)

    assert report["keys"]["undecryptable"] == [{"appId": app["appId"], "field": "appPrivateKey"},
                                               {"appId": app["appId"], "field": "TWILIOToken"}]
    assert report["keys"]["appTokensNotVerified"] == [app["appId"]]
    assert len(report["blockers"]) == 3


@pytest.mark.parametrize("pem_format", [["-traditional"], []], ids=["openssl-1-format", "pkcs8"])
def test_check_accepts_reference_secrets(cli, legacy_database, tmp_path, monkeypatch, pem_format):
    # The reference server's key as its README makes it, and an encryptKey of its own choosing.
    passphrase = "reference pass key"
    subprocess.run(["openssl", "genrsa", *pem_format, "-aes128", "-passout", f"pass:{passphrase}",
                    "-out", str(tmp_path / "server-private-key"), "3072"], check=True, capture_output=True)
    (tmp_path / "server-key-passphrase").write_text(passphrase)
    (tmp_path / "encryption-key").write_text("reference encrypt key")
    monkeypatch.setenv("LOCAL_SECRETS_DIR", str(tmp_path))
    reset_caches()
    app = insert_app(legacy_database, legacy_app())

    report = _json(cli("check", "--json"))

    assert report["keys"] == {"undecryptable": [], "appTokensNotVerified": [], "appTokensWithoutKid": 1}
    assert report["users"]["perApp"] == [{"appId": app["appId"], "name": app["name"], "users": 0}]


def test_revoke_ends_old_access_tokens(api, database, environment):
    # The server under test reads the shared test database, so these apps live there.
    app = insert_app(database, legacy_app())
    other = insert_app(database, legacy_app())
    database["users"].insert_many([legacy_user(app, "kept@example.com"), legacy_user(other, "other@example.com")])
    token = legacy_access_token(app, "kept@example.com")
    other_token = legacy_access_token(other, "other@example.com")
    env = {**os.environ, **environment}

    before = api.get("/api/appuser/getUser", headers={"access-token": token})
    result = subprocess.run([sys.executable, "-m", "cosync", "db", "revoke-access-tokens", "--app", app["appId"], "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    after = api.get("/api/appuser/getUser", headers={"access-token": token})
    untouched = api.get("/api/appuser/getUser", headers={"access-token": other_token})
    login = api.post("/api/appuser/login", headers={"app-token": app["appToken"]},
                     json={"handle": "kept@example.com", "password": digest("legacy password")})

    assert before.status_code == 200, before.text
    assert _json(result) == {app["appId"]: 1}
    assert after.status_code == 400
    assert after.json() == {"code": 405, "message": "invalid access token"}
    assert untouched.status_code == 200, untouched.text
    assert login.status_code == 200, login.text
    fresh = api.get("/api/appuser/getUser", headers={"access-token": login.json()["access-token"]})
    assert fresh.status_code == 200, fresh.text


def test_revoke_unknown_app(cli):
    result = cli("revoke-access-tokens", "--app", "0" * 32)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no app {'0' * 32}; list the apps with `python -m cosync apps list`"
    )


def _app_written_by_us(database) -> dict:
    """Insert an app and a TOTP user as this server writes them: every secret sealed with AES-256-GCM."""
    secret = get_secrets().encryption_key
    app = legacy_app()
    app_id = app["appId"]
    for field, plaintext in (("appPrivateKey", app["_legacy"]["private64"]), ("appPublicKey", app["_legacy"]["public64"]),
                             ("TWILIOToken", "t" * 32)):
        app[field] = encrypt_field(secret, plaintext, f"apps.{field}:{app_id}")
    insert_app(database, app)
    user = legacy_user(app, "totp@example.com", twoFactorGoogleVerification=True,
                       googleSecretKey=encrypt_field(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
                                                     f"users.googleSecretKey:{app_id}:totp@example.com"))
    database["users"].insert_one(user)
    return app


def test_rollback_writes_reference_formats(cli, legacy_database):
    app = _app_written_by_us(legacy_database)
    before = _snapshot(legacy_database)

    dry = _json(cli("rollback", "--dry-run", "--json"))
    unchanged = _snapshot(legacy_database)
    first = _json(cli("rollback", "--json"))
    second = _json(cli("rollback", "--json"))

    assert unchanged == before
    assert dry["appFieldsRewritten"] == 3
    assert first["appFieldsRewritten"] == 3
    assert first["totpSecretsRewritten"] == 1
    assert first["notDecrypted"] == []
    assert first["cannotRollBack"]["argon2idPasswords"] == 0
    assert second["appFieldsRewritten"] == 0
    assert second["totpSecretsRewritten"] == 0
    stored = legacy_database["apps"].find_one({"appId": app["appId"]})
    assert ctr_decrypt(stored["appPrivateKey"]) == app["_legacy"]["private64"]
    assert ctr_decrypt(stored["appPublicKey"]) == app["_legacy"]["public64"]
    assert ctr_decrypt(stored["TWILIOToken"]) == "t" * 32
    user = legacy_database["users"].find_one({"appId": app["appId"]})
    assert user["googleSecretKey"] == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    # This server reads the rolled-back values too, so switching again needs no tool.
    assert decrypt_field(get_secrets().encryption_key, stored["appPrivateKey"],
                         f"apps.appPrivateKey:{app['appId']}") == app["_legacy"]["private64"]


def test_rollback_counts_what_stays(cli, legacy_database):
    app = _app_written_by_us(legacy_database)
    argon2id = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
    legacy_database["users"].insert_one({**legacy_user(app, "new@example.com", password=None), "password": argon2id})
    legacy_database["invites"].insert_one({"appId": app["appId"], "handle": "guest@example.com", "codeHash": "0" * 64})

    result = _json(cli("rollback", "--json"))

    assert result["cannotRollBack"] == {
        "argon2idPasswords": 1, "hashedCodes": {"invites": 1, "resetpasswords": 0, "signupcodes": 0},
    }


def test_check_empty_database(cli, legacy_database):
    report = _json(cli("check", "--json"))

    assert report["apps"] == {"total": 0, "byStatus": {}}
    assert report["users"] == {"total": 0, "perApp": []}
    assert report["duplicates"] == []
    assert report["indexes"]["present"] == []
    assert report["blockers"] == []
    assert legacy_database.list_collection_names() == []
