"""Taking over a database that the reference CosyncJWT server wrote: `db check` and `db migrate`.

`check` only reads. It counts apps, users and pending records, finds the duplicates that block
each unique index, counts records in CosyncJWT's formats, and tries the configured server key
and `encryption-key` on every app. `migrate` creates every index after resolving the
duplicates it can resolve without deleting a user:

- A password account whose handle is not lower-case and trimmed gets the normalised handle,
  unless another account of the app already has it. CosyncJWT's own login lower-cases the
  handle before its lookup, so such an account could never log in with its password.
- Accounts of Apple or Google sign-in and anonymous accounts keep their handle: they are found
  by provider user id or by the exact handle, and customer backends know that handle as `sub`.
- Of several `signups` documents for one (app, handle) the most recently updated stays, and
  the others move to `migrationarchive`, from where a rollback can restore them.

Everything else (two users with one handle, two apps with one appId or name, handles that
differ only in case) is listed and left, and the index that needs it is reported as not
created. A second run changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
from collections import defaultdict
from typing import Any, Iterable

import jwt
from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from cosync import audit, db
from cosync.crypto import GCM_PREFIX, DecryptionError, decrypt_field
from cosync.dates import utc_now
from cosync.secrets import get_secrets
from cosync.tokens import InvalidToken, decode_server_token, is_anonymous_handle

log = logging.getLogger(__name__)

ARCHIVE = "migrationarchive"
ENCRYPTED_APP_FIELDS = (
    "appPrivateKey", "appPublicKey", "appSecret",
    "TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber", "emailExtensionAPIKey",
)
KEY_FIELDS = ("appPrivateKey", "appPublicKey")
USER_FIELDS_WITH_DEFAULTS = ("status", "locale", "loginProvider", "metaData", "createdAt")
LEGACY_COLLECTIONS = (db.APPS, db.USERS, db.SIGNUPS, db.INVITES, db.RESET_PASSWORDS, db.EMAIL_TEMPLATES, db.APP_LOGS)
# The audit record of a database-wide change has this app id, as it concerns no single app.
ALL_APPS = "*"


def check(database: Database) -> dict[str, Any]:
    """Return the report of `db check`; reads only. `blockers` lists what `migrate` cannot fix."""
    duplicates = find_index_duplicates(database)
    handles = plan_handle_changes(database)
    keys = check_app_keys(database)
    report = {
        "apps": _app_counts(database),
        "users": _user_counts(database),
        "pending": {
            "signups": database[db.SIGNUPS].count_documents({"status": "pending"}),
            "invites": database[db.INVITES].count_documents({"status": "pending"}),
            "resetPasswords": database[db.RESET_PASSWORDS].count_documents({}),
        },
        "duplicates": duplicates,
        "handles": handles,
        "legacyFormats": _legacy_formats(database),
        "keys": keys,
        "indexes": index_status(database, duplicates),
    }
    report["blockers"] = blockers(report)
    return report


def blockers(report: dict[str, Any]) -> list[str]:
    """Return one line for each finding that leaves an index uncreated or the server unable to serve an app."""
    lines = []
    for item in report["duplicates"]:
        if not item["resolvable"]:
            lines.append(f"{item['collection']}: {len(item['ids'])} documents share {json.dumps(item['key'])}")
    for item in report["keys"]["undecryptable"]:
        lines.append(f"apps: {item['field']} of app {item['appId']} does not decrypt with this encryption-key")
    for app_id in report["keys"]["appTokensNotVerified"]:
        lines.append(f"apps: the appToken of app {app_id} does not verify with this server key")
    return lines


def _app_counts(database: Database) -> dict[str, Any]:
    by_status: dict[str, int] = defaultdict(int)
    for app in database[db.APPS].find({}, {"status": 1}):
        by_status[str(app.get("status") or "active")] += 1
    return {"total": sum(by_status.values()), "byStatus": dict(sorted(by_status.items()))}


def _user_counts(database: Database) -> dict[str, Any]:
    per_app = []
    for app in database[db.APPS].find({}, {"appId": 1, "name": 1}).sort("name", 1):
        count = database[db.USERS].count_documents({"appId": app.get("appId")})
        per_app.append({"appId": app.get("appId"), "name": app.get("name"), "users": count})
    return {"total": database[db.USERS].count_documents({}), "perApp": per_app}


def _legacy_formats(database: Database) -> dict[str, Any]:
    bcrypt_filter = {"password": {"$regex": r"^\$2[aby]\$"}}
    ctr = {}
    for field in ENCRYPTED_APP_FIELDS:
        ctr[field] = database[db.APPS].count_documents(
            {field: {"$type": "string", "$ne": "", "$not": {"$regex": f"^{GCM_PREFIX}"}}}
        )
    return {
        "bcryptPasswords": {
            "users": database[db.USERS].count_documents(bcrypt_filter),
            "signups": database[db.SIGNUPS].count_documents(bcrypt_filter),
        },
        "ctrFields": ctr,
        "clearTotpSecrets": database[db.USERS].count_documents(
            {"googleSecretKey": {"$type": "string", "$ne": "", "$not": {"$regex": f"^{GCM_PREFIX}"}}}
        ),
        "clearCodes": {
            name: database[name].count_documents({"code": {"$exists": True}, "codeHash": {"$exists": False}})
            for name in (db.SIGNUPS, db.INVITES, db.RESET_PASSWORDS)
        },
        "versionKeys": {name: database[name].count_documents({"__v": {"$exists": True}}) for name in LEGACY_COLLECTIONS},
        "usersMissing": {
            field: database[db.USERS].count_documents({field: {"$exists": False}}) for field in USER_FIELDS_WITH_DEFAULTS
        },
    }


def check_app_keys(database: Database) -> dict[str, Any]:
    """Try the configured keys on every app: its appToken against the server key, its encrypted
    fields against `encryption-key`. Also count the app tokens without `kid` (issued by CosyncJWT)."""
    secret = get_secrets().encryption_key
    undecryptable = []
    not_verified = []
    without_kid = 0
    for app in database[db.APPS].find({}, {"appId": 1, "appToken": 1, **{field: 1 for field in ENCRYPTED_APP_FIELDS}}):
        app_id = app.get("appId")
        for field in ENCRYPTED_APP_FIELDS:
            if not _decrypts(secret, app, field):
                undecryptable.append({"appId": app_id, "field": field})
        token = app.get("appToken")
        if not isinstance(token, str) or not _verifies(token, app_id):
            not_verified.append(app_id)
        elif "kid" not in jwt.get_unverified_header(token):
            without_kid += 1
    return {"undecryptable": undecryptable, "appTokensNotVerified": not_verified, "appTokensWithoutKid": without_kid}


def _decrypts(secret: str, app: dict[str, Any], field: str) -> bool:
    stored = app.get(field)
    if stored in (None, ""):
        return True
    if not isinstance(stored, str):
        return False
    try:
        plaintext = decrypt_field(secret, stored, f"apps.{field}:{app.get('appId')}")
    except DecryptionError:
        return False
    if field not in KEY_FIELDS:
        return True
    # A wrong key in CTR mode can still yield valid UTF-8, but not base64 of a PEM text.
    try:
        return base64.b64decode(plaintext, validate=True).startswith(b"-----BEGIN ")
    except binascii.Error:
        return False


def _verifies(token: str, app_id: Any) -> bool:
    try:
        claims = decode_server_token(token)
    except InvalidToken:
        return False
    return claims.get("scope") == "app" and claims.get("appId") == app_id


def unique_indexes() -> Iterable[tuple[str, list[str], str]]:
    """Yield (collection, key fields, index name) of every unique index the server creates."""
    for collection, specs in db.INDEXES.items():
        for keys, options in specs:
            if options.get("unique"):
                yield collection, [field for field, _ in keys], options["name"]


def find_index_duplicates(database: Database) -> list[dict[str, Any]]:
    """Return every group of documents that share the key of a unique index, with whether
    `migrate` resolves it."""
    found = []
    for collection, fields, index in unique_indexes():
        groups: dict[tuple, list[Any]] = defaultdict(list)
        for document in database[collection].find({}, {field: 1 for field in fields}).sort("_id", 1):
            groups[tuple(_hashable(document.get(field)) for field in fields)].append(document["_id"])
        for key, ids in groups.items():
            if len(ids) > 1:
                found.append({
                    "collection": collection,
                    "index": index,
                    "key": dict(zip(fields, key)),
                    "ids": [str(value) for value in ids],
                    "resolvable": collection == db.SIGNUPS,
                })
    return found


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def plan_handle_changes(database: Database) -> dict[str, Any]:
    """Sort the users whose handle is not lower-case and trimmed into renames, kept handles
    (Apple and Google accounts) and case-only duplicates. Anonymous `ANON_` handles are left out."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for user in database[db.USERS].find({}, {"appId": 1, "handle": 1, "loginProvider": 1}).sort("_id", 1):
        handle = user.get("handle")
        if isinstance(handle, str) and not is_anonymous_handle(handle):
            groups[(user.get("appId"), handle.strip().lower())].append(user)
    renames, kept, case_duplicates = [], [], []
    for (app_id, normalised), users in groups.items():
        if all(user["handle"] == normalised for user in users):
            continue
        if len({user["handle"] for user in users}) > 1:
            case_duplicates.append({"appId": app_id, "handles": sorted({user["handle"] for user in users})})
            continue
        for user in users:
            entry = {"_id": str(user["_id"]), "appId": app_id, "handle": user["handle"], "normalised": normalised}
            (kept if user.get("loginProvider") else renames).append(entry)
    return {"renames": renames, "keptSocial": kept, "caseDuplicates": case_duplicates}


def index_status(database: Database, duplicates: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Sort the server's indexes into present, missing (created by `migrate`) and blocked."""
    blocked = {(item["collection"], item["index"]) for item in duplicates if not item["resolvable"]}
    status: dict[str, list[str]] = {"present": [], "missing": [], "blocked": []}
    for collection, specs in db.INDEXES.items():
        existing = database[collection].index_information()
        for _, options in specs:
            label = f"{collection}.{options['name']}"
            if options["name"] in existing:
                status["present"].append(label)
            elif (collection, options["name"]) in blocked:
                status["blocked"].append(label)
            else:
                status["missing"].append(label)
    return status


def migrate(database: Database, dry_run: bool = False) -> dict[str, Any]:
    """Resolve the duplicates that can be resolved, then create every index.

    With `dry_run` nothing is written and the result lists what a real run would do.
    """
    handles = plan_handle_changes(database)
    duplicates = find_index_duplicates(database)
    archived = _signups_to_archive(database, duplicates)
    if dry_run:
        return {
            "dryRun": True,
            "renamedHandles": handles["renames"],
            "archivedSignups": archived,
            "indexes": index_status(database, duplicates),
            "unresolved": _unresolved(duplicates, handles),
        }

    renamed = [item for item in handles["renames"] if _rename_handle(database, item)]
    for document_id in archived:
        _archive_signup(database, document_id)
    before = index_status(database, find_index_duplicates(database))
    db.ensure_indexes(database)
    remaining = find_index_duplicates(database)
    after = index_status(database, remaining)
    created = sorted(set(after["present"]) - set(before["present"]))
    result = {
        "dryRun": False,
        "renamedHandles": renamed,
        "archivedSignups": archived,
        "indexes": {"created": created, "present": after["present"], "notCreated": after["missing"] + after["blocked"]},
        "unresolved": _unresolved(remaining, handles),
    }
    _audit(renamed, archived, created)
    return result


def _unresolved(duplicates: list[dict[str, Any]], handles: dict[str, Any]) -> dict[str, Any]:
    return {
        "duplicates": [item for item in duplicates if not item["resolvable"]],
        "caseDuplicates": handles["caseDuplicates"],
    }


def _signups_to_archive(database: Database, duplicates: list[dict[str, Any]]) -> list[str]:
    """Return the ids of the `signups` documents to archive: all but the most recently updated of each group."""
    archived = []
    for item in duplicates:
        if item["collection"] != db.SIGNUPS:
            continue
        documents = list(database[db.SIGNUPS].find({"appId": item["key"]["appId"], "handle": item["key"]["handle"]},
                                                   {"updatedAt": 1, "createdAt": 1}))
        documents.sort(key=_recency, reverse=True)
        archived += [str(document["_id"]) for document in documents[1:]]
    return archived


def _recency(document: dict[str, Any]) -> tuple[datetime.datetime, str]:
    moment = document.get("updatedAt") or document.get("createdAt")
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return moment, str(document["_id"])


def _stored_id(text: str) -> Any:
    """Return the `_id` that `text` was printed from: an ObjectId, or the string itself."""
    return ObjectId(text) if ObjectId.is_valid(text) else text


def _rename_handle(database: Database, item: dict[str, Any]) -> bool:
    try:
        result = database[db.USERS].update_one(
            {"_id": _stored_id(item["_id"]), "handle": item["handle"]}, {"$set": {"handle": item["normalised"]}}
        )
    except DuplicateKeyError:
        log.warning("handle of user %s in app %s not normalised: the normalised handle is taken", item["_id"], item["appId"])
        return False
    return result.modified_count == 1


def _archive_signup(database: Database, document_id: str) -> None:
    stored_id = _stored_id(document_id)
    document = database[db.SIGNUPS].find_one({"_id": stored_id})
    if document is None:
        return
    # Keyed by the original id, so a run that stopped between the two writes repeats them safely.
    database[ARCHIVE].replace_one(
        {"_id": f"signups:{document_id}"},
        {"collection": db.SIGNUPS, "document": document, "archivedAt": utc_now()},
        upsert=True,
    )
    database[db.SIGNUPS].delete_one({"_id": stored_id})


def _audit(renamed: list[dict[str, Any]], archived: list[str], created: list[str]) -> None:
    """Record each change: per app for handles, database-wide (app id `*`) for signups and indexes."""
    per_app: dict[str, int] = defaultdict(int)
    for item in renamed:
        per_app[item["appId"]] += 1
    for app_id, count in per_app.items():
        audit.record_operator(app_id, "dbMigrate", renamedHandles=count)
    if archived or created:
        audit.record_operator(ALL_APPS, "dbMigrate", archivedSignups=len(archived), createdIndexes=created)
    log.info("db migrate: %d handles normalised, %d sign-ups archived, %d indexes created",
             len(renamed), len(archived), len(created))


def revoke_access_tokens(database: Database, app_id: str | None) -> dict[str, int]:
    """Revoke every access token issued so far to the users of one app, or of all apps when
    `app_id` is None, and return the number of users per app.

    Tokens of CosyncJWT carry no `tokenVersion` and count as version 0, like those this server
    issued before the first revocation, so raising every user's version ends both. The users
    log in again to get a new token.
    """
    query = {} if app_id is None else {"appId": app_id}
    app_ids = [app["appId"] for app in database[db.APPS].find(query, {"appId": 1}) if app.get("appId")]
    if app_id is not None and not app_ids:
        raise LookupError(f"no app {app_id}")
    revoked = {}
    for each in app_ids:
        revoked[each] = database[db.USERS].update_many({"appId": each}, {"$inc": {"tokenVersion": 1}}).modified_count
        audit.record_operator(each, "revokeAccessTokens", users=revoked[each])
    return revoked
