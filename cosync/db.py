"""The process-wide MongoDB client, collection handles and index creation.

One `MongoClient` serves every invocation in a worker process: it is created on first use and
keeps its own connection pool. Collection and field names are those of CosyncJWT, so this server
can run on an existing CosyncJWT database.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

import pymongo
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from cosync.settings import SettingsError, get_settings

log = logging.getLogger(__name__)

APPS = "apps"
USERS = "users"
SIGNUPS = "signups"
INVITES = "invites"
RESET_PASSWORDS = "resetpasswords"
EMAIL_TEMPLATES = "emailtemplates"
APP_LOGS = "applogs"
# Collections this server adds to the CosyncJWT data model.
SIGNUP_CODES = "signupcodes"
COUNTERS = "counters"
SMS_CODES = "smscodes"
USER_NAMES = "usernames"

# Collections whose records carry `expiresAt`; `purge_expired` removes them after this many
# seconds past expiry, so that a late caller still gets "expired" rather than "not found".
EXPIRING = {
    SIGNUPS: 7 * 24 * 3600,
    SIGNUP_CODES: 7 * 24 * 3600,
    INVITES: 7 * 24 * 3600,
    RESET_PASSWORDS: 24 * 3600,
    SMS_CODES: 24 * 3600,
    COUNTERS: 0,
}

_lock = threading.Lock()
_client: pymongo.MongoClient | None = None
_indexes_ready: set[str] = set()


def get_client() -> pymongo.MongoClient:
    global _client
    with _lock:
        if _client is None:
            settings = get_settings()
            if not settings.mongodb_uri:
                raise SettingsError(
                    "setting MONGODB_URI is missing: set it to a MongoDB connection string "
                    "(`make run` sets it for its own server only; "
                    "other commands need the FerretDB address from its log)"
                )
            _client = pymongo.MongoClient(
                settings.mongodb_uri,
                tz_aware=True,
                connectTimeoutMS=settings.mongodb_timeout_ms,
                serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
                socketTimeoutMS=4 * settings.mongodb_timeout_ms,
                appname="cosync-jwt",
            )
        return _client


def get_database() -> Database:
    """Return the configured database, creating its indexes on first use in this process."""
    settings = get_settings()
    database = get_client()[settings.mongodb_database]
    if database.name not in _indexes_ready:
        with _lock:
            if database.name not in _indexes_ready:
                ensure_indexes(database)
                _indexes_ready.add(database.name)
    return database


def collection(name: str) -> Collection:
    return get_database()[name]


def reset_client() -> None:
    """Close the cached client (tests and the CLI use this after changing settings)."""
    global _client
    from cosync import audit  # audit imports this module

    audit.flush()
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _indexes_ready.clear()


INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    APPS: [
        ([("appId", 1)], {"unique": True, "name": "appId_unique"}),
        ([("name", 1)], {"unique": True, "name": "name_unique"}),
    ],
    USERS: [
        ([("appId", 1), ("handle", 1)], {"unique": True, "name": "appId_handle_unique"}),
        ([("appId", 1), ("userName", 1)], {"name": "appId_userName"}),
    ],
    SIGNUPS: [
        ([("appId", 1), ("handle", 1)], {"unique": True, "name": "appId_handle_unique"}),
    ],
    INVITES: [([("appId", 1), ("handle", 1)], {"name": "appId_handle"})],
    RESET_PASSWORDS: [([("appId", 1), ("handle", 1)], {"name": "appId_handle"})],
    EMAIL_TEMPLATES: [
        ([("appId", 1), ("templateName", 1), ("locale", 1)], {"name": "appId_template_locale"}),
    ],
    APP_LOGS: [([("appId", 1), ("createdAt", -1)], {"name": "appId_createdAt"})],
    SIGNUP_CODES: [([("appId", 1), ("handle", 1), ("createdAt", -1)], {"name": "appId_handle_createdAt"})],
    COUNTERS: [([("key", 1)], {"name": "key"})],
}


def _is_duplicate_key_failure(error: OperationFailure) -> bool:
    # MongoDB reports code 11000; FerretDB 1.x passes on SQLite's "UNIQUE constraint failed".
    return error.code == 11000 or "UNIQUE constraint failed" in str(error)


def ensure_indexes(database: Database) -> None:
    """Create the indexes; safe to repeat. TTL indexes are skipped where the server lacks them."""
    for name, specs in INDEXES.items():
        for keys, options in specs:
            try:
                database[name].create_index(keys, **options)
            except OperationFailure as error:
                if not (options.get("unique") and _is_duplicate_key_failure(error)):
                    raise
                # A database written by the reference server can hold duplicates. Serving goes
                # on without the index, so the duplicates must be resolved by the operator.
                log.error(
                    "unique index %s on %s not created, so uniqueness is not enforced: %s; "
                    "remove the duplicate documents and restart",
                    options["name"], name, error,
                )
    for name, grace_seconds in EXPIRING.items():
        try:
            database[name].create_index(
                [("expiresAt", 1)], expireAfterSeconds=grace_seconds, name="expiresAt_ttl"
            )
        except OperationFailure as error:
            # FerretDB 1.x returns "not implemented", so the purge timer removes the records instead.
            log.warning("no TTL index on %s (%s); the purge timer removes expired records", name, error)
    ensure_log_retention(database, get_settings().applog_retention_days)


LOG_TTL_INDEX = "createdAt_ttl"


def ensure_log_retention(database: Database, retention_days: int) -> None:
    """Expire `applogs` records `retention_days` after `createdAt` with a TTL index.

    A changed retention updates the existing index (`collMod`), and 0 drops it so records are
    kept. Servers without TTL indexes (FerretDB 1.x) rely on `purge_expired` instead.
    """
    logs = database[APP_LOGS]
    if retention_days == 0:
        if LOG_TTL_INDEX in logs.index_information():
            logs.drop_index(LOG_TTL_INDEX)
        return
    seconds = retention_days * 24 * 3600
    try:
        logs.create_index([("createdAt", 1)], expireAfterSeconds=seconds, name=LOG_TTL_INDEX)
    except OperationFailure as error:
        if error.code not in (85, 86):  # IndexOptionsConflict, IndexKeySpecsConflict
            log.warning("no TTL index on %s (%s); the purge timer removes old records", APP_LOGS, error)
            return
        database.command("collMod", APP_LOGS, index={"name": LOG_TTL_INDEX, "expireAfterSeconds": seconds})


def purge_expired(database: Database, now: datetime.datetime) -> dict[str, int]:
    """Delete records past their expiry and grace period, and audit records past the log
    retention; return the count per collection."""
    removed = {}
    for name, grace_seconds in EXPIRING.items():
        cutoff = now - datetime.timedelta(seconds=grace_seconds)
        removed[name] = database[name].delete_many({"expiresAt": {"$lt": cutoff}}).deleted_count
    retention_days = get_settings().applog_retention_days
    if retention_days:
        cutoff = now - datetime.timedelta(days=retention_days)
        removed[APP_LOGS] = database[APP_LOGS].delete_many({"createdAt": {"$lt": cutoff}}).deleted_count
    return removed
