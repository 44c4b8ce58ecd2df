"""`db rollback`: make a database that this server wrote readable by the reference CosyncJWT
server again, so an operator can switch back.

Stop this server first: every write it makes afterwards is in its own format again.

Rewritten: every AES-256-GCM field of `apps` becomes AES-256-CTR under SHA-256 of the same
`encryption-key` (the reference server's `encryptKey`), and TOTP secrets of `users` return to
clear text, where CosyncJWT reads them. The `applogs` TTL index is dropped, because CosyncJWT
keeps its logs. Reported only, because nothing can turn them back: Argon2id password hashes
(those users reset their password on the reference server), and pending sign-ups, invites and
reset codes stored as keyed hashes (those are requested again).
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.database import Database

from cosync import audit, db
from cosync.crypto import GCM_PREFIX, DecryptionError, decrypt_field, encrypt_legacy_ctr
from cosync.secrets import get_secrets
from cosync.services.migration import ALL_APPS, ENCRYPTED_APP_FIELDS
from cosync.services.transfer import app_field_context, user_field_context

log = logging.getLogger(__name__)

GCM_FILTER = {"$regex": f"^{GCM_PREFIX}"}


def rollback(database: Database, dry_run: bool = False) -> dict[str, Any]:
    """Rewrite what the reference server cannot read, and count what cannot be rewritten.

    A value that does not decrypt is listed and left. With `dry_run` nothing is written.
    """
    secret = get_secrets().encryption_key
    app_fields, failed = _rewrite_app_fields(database, secret, dry_run)
    totp_secrets, failed_users = _rewrite_totp_secrets(database, secret, dry_run)
    has_log_ttl = db.LOG_TTL_INDEX in database[db.APP_LOGS].index_information()
    if not dry_run and (app_fields or totp_secrets or has_log_ttl):
        # Recorded before the index is dropped: the first audit write of a process creates the
        # server's indexes, the log TTL index among them.
        audit.record_operator(ALL_APPS, "dbRollback", appFields=app_fields, totpSecrets=totp_secrets)
        log.info("db rollback: %d app fields and %d TOTP secrets rewritten", app_fields, totp_secrets)
    if has_log_ttl and not dry_run:
        database[db.APP_LOGS].drop_index(db.LOG_TTL_INDEX)
    result = {
        "dryRun": dry_run,
        "appFieldsRewritten": app_fields,
        "totpSecretsRewritten": totp_secrets,
        "logTtlIndexDropped": has_log_ttl,
        "notDecrypted": failed + failed_users,
        "cannotRollBack": {
            "argon2idPasswords": database[db.USERS].count_documents({"password": {"$regex": r"^\$argon2id\$"}}),
            "hashedCodes": {
                name: database[name].count_documents({"codeHash": {"$exists": True}})
                for name in (db.INVITES, db.RESET_PASSWORDS, db.SIGNUP_CODES)
            },
        },
    }
    return result


def _rewrite_app_fields(database: Database, secret: str, dry_run: bool) -> tuple[int, list[dict[str, Any]]]:
    rewritten, failed = 0, []
    query = {"$or": [{field: GCM_FILTER} for field in ENCRYPTED_APP_FIELDS]}
    for app in database[db.APPS].find(query, {"appId": 1, **{field: 1 for field in ENCRYPTED_APP_FIELDS}}):
        changes = {}
        for field in ENCRYPTED_APP_FIELDS:
            stored = app.get(field)
            if not isinstance(stored, str) or not stored.startswith(GCM_PREFIX):
                continue
            try:
                plaintext = decrypt_field(secret, stored, app_field_context(field, app["appId"]))
            except DecryptionError:
                failed.append({"appId": app["appId"], "field": field})
                continue
            changes[field] = encrypt_legacy_ctr(secret, plaintext)
        if changes and not dry_run:
            database[db.APPS].update_one({"_id": app["_id"]}, {"$set": changes})
        rewritten += len(changes)
    return rewritten, failed


def _rewrite_totp_secrets(database: Database, secret: str, dry_run: bool) -> tuple[int, list[dict[str, Any]]]:
    rewritten, failed = 0, []
    for user in database[db.USERS].find({"googleSecretKey": GCM_FILTER}, {"appId": 1, "handle": 1, "googleSecretKey": 1}):
        context = user_field_context("googleSecretKey", user["appId"], user["handle"])
        try:
            plaintext = decrypt_field(secret, user["googleSecretKey"], context)
        except DecryptionError:
            failed.append({"appId": user["appId"], "handle": user["handle"], "field": "googleSecretKey"})
            continue
        if not dry_run:
            database[db.USERS].update_one({"_id": user["_id"]}, {"$set": {"googleSecretKey": plaintext}})
        rewritten += 1
    return rewritten, failed
