"""Export of an app to a JSON file, and import of such a file or of a CosyncJWT export ZIP.

The file format is described in docs/export-format.md. An export contains the app's settings,
key pair, provider credentials, e-mail templates, users (with password hashes and TOTP seeds),
sign-ups and invites. Values encrypted in the database are written in plaintext, so the file
is as sensitive as the database and its encryption key together. Import encrypts them again
under the importing server's key.

MongoDB types are written as MongoDB Extended JSON v2 in relaxed mode (`{"$date": ...}`,
`{"$oid": ...}`), so dates and document ids survive the round trip.
"""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt
from bson import ObjectId, json_util
from bson.errors import BSONError
from bson.json_util import JSONMode, JSONOptions
from pymongo.errors import PyMongoError

from cosync import app_cache, audit, db, errors
from cosync.crypto import GCM_PREFIX, DecryptionError, decrypt_field, encrypt_field
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.keys import generate_app_key_pair, load_app_private_key, public_key_base64
from cosync.secrets import get_secrets
from cosync.services import transfer_zip
from cosync.services.apps import APP_DEFAULTS, admin_view, load_app, validate_app_name
from cosync.settings import get_settings
from cosync.tokens import ALGORITHMS, SCOPE_APP, SCOPE_APP_SECRET, issue_app_secret, issue_app_token, server_public_key

FORMAT = "cosync-app-export"
FORMAT_VERSION = 1
OPERATOR_LOG = "app"

# App fields CosyncJWT stores encrypted. Any other app field whose value this server encrypted
# (it starts with the AES-GCM prefix) is a secret too.
APP_SEALED_FIELDS = frozenset({
    "appPrivateKey",
    "appPublicKey",
    "appSecret",
    "TWILIOAccountSid",
    "TWILIOToken",
    "TWILIOPhoneNumber",
    "emailExtensionAPIKey",
})

# The sections of the file that hold records of the app, with their collections.
RECORD_SECTIONS = {
    "users": db.USERS,
    "signups": db.SIGNUPS,
    "invites": db.INVITES,
    "emailTemplates": db.EMAIL_TEMPLATES,
}
# Collections cleared before an import writes an app id. Pending codes are not exported: they
# are stored as keyed hashes bound to the encryption key and app id, so they cannot move.
# User-name claims only guard concurrent `setUserName` calls; the user documents carry the names.
CLEARED_COLLECTIONS = (*RECORD_SECTIONS.values(), db.SIGNUP_CODES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES)

APP_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
ZIP_MAGIC = b"PK\x03\x04"
MAX_NESTING = 32
READ_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=datetime.timezone.utc)
WRITE_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED)


def app_field_context(field_name: str, app_id: str) -> str:
    """Return the encryption context of an app field, as `cosync.keys` and `apps` seal them."""
    return f"apps.{field_name}:{app_id}"


def user_field_context(field_name: str, app_id: str, handle: str) -> str:
    """Return the encryption context of a user field, such as the TOTP seed `googleSecretKey`."""
    # NOTE: a user field encrypted under another context makes export fail and name the field.
    return f"users.{field_name}:{app_id}:{handle}"


# ---------------------------------------------------------------------------------------------
# Export


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    file_name: str


def export_app(app_id: Any) -> ExportFile:
    """Return the export file of an app and record the export in the app's audit log."""
    if not isinstance(app_id, str) or not app_id:
        raise ApiError(errors.MISSING_PARAM, "appId is missing")
    document = export_document(app_id)
    content = json_util.dumps(document, json_options=WRITE_OPTIONS, indent=1, ensure_ascii=False)
    counts = {section: len(document[section]) for section in RECORD_SECTIONS}
    audit.record(app_id, "exportAppDatabase", "success", log_type=OPERATOR_LOG, **counts)
    return ExportFile(content=content.encode("utf-8"), file_name=f"cosync-app-{app_id}.json")


def export_document(app_id: str) -> dict[str, Any]:
    """Return the export of an app as a document of the export format, secrets decrypted."""
    app = load_app(app_id)
    key = get_secrets().encryption_key
    settings, app_secrets = _unseal_fields(
        app, lambda name: name in APP_SEALED_FIELDS, lambda name: app_field_context(name, app_id), key, "app"
    )
    settings.pop("_id", None)
    document: dict[str, Any] = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "exportedAt": utc_now(),
        "app": settings,
        "secrets": app_secrets,
    }
    for section, collection in RECORD_SECTIONS.items():
        cursor = db.collection(collection).find({"appId": app_id}).sort("_id", 1)
        document[section] = [_export_record(section, record, app_id, key) for record in cursor]
    return document


def _export_record(section: str, record: dict[str, Any], app_id: str, key: str) -> dict[str, Any]:
    record = {name: value for name, value in record.items() if name != "appId"}
    if section != "users":
        return record
    handle = str(record.get("handle"))
    fields, user_secrets = _unseal_fields(
        record, lambda name: False, lambda name: user_field_context(name, app_id, handle), key, f"user {handle}"
    )
    if user_secrets:
        fields["secrets"] = user_secrets
    return fields


def _unseal_fields(
    document: dict[str, Any],
    is_sealed: Callable[[str], bool],
    context_of: Callable[[str], str],
    key: str,
    owner: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a document into its plain fields and its encrypted fields, decrypted."""
    plain: dict[str, Any] = {}
    unsealed: dict[str, str] = {}
    for name, value in document.items():
        encrypted = isinstance(value, str) and bool(value) and (value.startswith(GCM_PREFIX) or is_sealed(name))
        if not encrypted:
            plain[name] = value
            continue
        try:
            unsealed[name] = decrypt_field(key, value, context_of(name))
        except DecryptionError:
            raise ApiError(
                errors.INTERNAL_SERVER_ERROR,
                f"field {name} of {owner} does not decrypt with this server's key; nothing was exported",
            ) from None
    return plain, unsealed


# ---------------------------------------------------------------------------------------------
# Upload: the body of the import route


@dataclass(frozen=True)
class Upload:
    content: bytes
    app_name: str | None = None
    overwrite: bool = False


def read_upload(body: bytes, content_type: str, params: dict[str, str]) -> Upload:
    """Read an import request: the file as the body, or as field `file` of a multipart form.

    Options come from the query (`appName`, `overwrite`) or from form fields of those names.
    """
    limit = get_settings().max_import_bytes
    if len(body) > limit:
        raise ApiError(errors.INVALID_DATA, f"upload of {len(body)} bytes exceeds {limit} bytes", status=413)
    options = dict(params)
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        fields = _form_fields(body, content_type)
        content = fields.pop("file", None)
        if content is None:
            raise ApiError(errors.MISSING_PARAM, "form field file is missing")
        options.update({name: value.decode("utf-8", "replace") for name, value in fields.items()})
    else:
        content = body
    if not content:
        raise ApiError(errors.MISSING_PARAM, "the request carries no file")
    return Upload(content=content, app_name=options.get("appName") or None, overwrite=_flag(options.get("overwrite")))


def _form_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """Return the named parts of a multipart/form-data body (RFC 7578)."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ApiError(errors.INVALID_DATA, "multipart body could not be parsed")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def _flag(value: Any) -> bool:
    if value in (None, "", "false", False):
        return False
    if value in ("true", True):
        return True
    raise ApiError(errors.INVALID_DATA, "overwrite must be true or false")


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class Sections:
    """The parts of an export, in the export format's shape, ready to be checked and written."""

    app: dict[str, Any]
    secrets: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    keep_app_id: bool
    warnings: list[str] = field(default_factory=list)


def import_upload(upload: Upload) -> dict[str, Any]:
    """Import an export file (JSON) or a CosyncJWT export ZIP as an app of this server."""
    if upload.content.startswith(ZIP_MAGIC):
        sections = _sections_from_zip(upload.content)
    else:
        sections = _sections_from_json(upload.content)
    return import_sections(sections, app_name=upload.app_name, overwrite=upload.overwrite)


def _sections_from_zip(content: bytes) -> Sections:
    limit = 10 * get_settings().max_import_bytes
    try:
        converted = transfer_zip.read_reference_zip(content, limit)
    except transfer_zip.ReferenceZipError as error:
        raise ApiError(errors.INVALID_DATA, f"CosyncJWT export ZIP: {error}") from None
    return Sections(
        app=converted.app,
        secrets=converted.secrets,
        records=converted.records,
        keep_app_id=False,
        warnings=converted.warnings,
    )


def _sections_from_json(content: bytes) -> Sections:
    try:
        document = json_util.loads(content.decode("utf-8-sig"), json_options=READ_OPTIONS)
    except (ValueError, TypeError, KeyError, BSONError, RecursionError, OverflowError):
        raise ApiError(errors.INVALID_DATA, "file is neither JSON nor a ZIP archive") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ApiError(errors.INVALID_DATA, f"file is not a {FORMAT} document")
    if document.get("formatVersion") != FORMAT_VERSION:
        raise ApiError(errors.INVALID_DATA, f"formatVersion must be {FORMAT_VERSION}")
    app = document.get("app")
    app_secrets = document.get("secrets", {})
    if not isinstance(app, dict) or not isinstance(app_secrets, dict):
        raise ApiError(errors.INVALID_DATA, "app and secrets must be objects")
    records = {}
    for section in RECORD_SECTIONS:
        value = document.get(section, [])
        if not isinstance(value, list) or not all(isinstance(record, dict) for record in value):
            raise ApiError(errors.INVALID_DATA, f"{section} must be a list of objects")
        records[section] = value
    return Sections(app=app, secrets=app_secrets, records=records, keep_app_id=True)


def import_sections(sections: Sections, app_name: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Check every part of an export, then write it as an app; return the app and counts.

    Nothing is written until the whole file has passed its checks. The app document is written
    last, so the app does not serve requests before its users and templates exist.
    """
    app_id = _target_app_id(sections)
    name = validate_app_name(app_name if app_name is not None else sections.app.get("name"))
    _check_conflicts(app_id, name, overwrite)
    app = _app_document(sections, app_id, name)
    records = {
        section: _record_documents(section, sections.records.get(section, []), app_id, sections.keep_app_id)
        for section in RECORD_SECTIONS
    }
    _check_record_ids(records, app_id)

    _write(app, records)
    counts = {section: len(documents) for section, documents in records.items()}
    audit.record(app_id, "importDatabase", "success", log_type=OPERATOR_LOG, overwrite=overwrite, **counts)
    return {**admin_view(app), "imported": counts, "warnings": sections.warnings}


def _target_app_id(sections: Sections) -> str:
    if not sections.keep_app_id:
        return uuid.uuid4().hex
    app_id = sections.app.get("appId")
    if not isinstance(app_id, str) or not APP_ID_PATTERN.fullmatch(app_id):
        raise ApiError(errors.INVALID_DATA, "app.appId must be 32 lower-case hexadecimal characters")
    return app_id


def _check_conflicts(app_id: str, name: str, overwrite: bool) -> None:
    apps = db.collection(db.APPS)
    named = apps.find_one({"name": name}, {"appId": 1})
    if named is not None and named.get("appId") != app_id:
        raise ApiError(
            errors.INVALID_DATA,
            f"another app ({named.get('appId')}) is named {name!r}; "
            "import under a new name with appName (CLI: --name)",
        )
    if not overwrite and apps.find_one({"appId": app_id}, {"_id": 1}) is not None:
        raise ApiError(errors.INVALID_DATA, f"app {app_id} exists; import with overwrite=true (CLI: --overwrite) to replace it")


def _check_record_ids(records: dict[str, list[dict[str, Any]]], app_id: str) -> None:
    """Reject record ids that records of another app have, as in a file whose appId was edited.

    Their insert would fail only after `_write` had deleted the app that the import replaces.
    """
    for section, documents in records.items():
        ids = [document["_id"] for document in documents if "_id" in document]
        if not ids:
            continue
        query = {"_id": {"$in": ids}, "appId": {"$ne": app_id}}
        existing = db.collection(RECORD_SECTIONS[section]).find_one(query, {"_id": 1})
        if existing is not None:
            raise ApiError(
                errors.INVALID_DATA,
                f"{section}: record id {existing['_id']} belongs to another app; "
                "remove the _id fields to import a copy",
            )


def _app_document(sections: Sections, app_id: str, name: str) -> dict[str, Any]:
    settings = {key: value for key, value in sections.app.items() if key not in ("_id", "__v", "appId", "name")}
    _check_fields(settings, "app")
    _check_setting_types(settings)
    for key in settings:
        if key in APP_SEALED_FIELDS:
            raise ApiError(errors.INVALID_DATA, f"app.{key} belongs in the secrets section")
    app_secrets = dict(sections.secrets)
    for key, value in app_secrets.items():
        if not isinstance(value, str):
            raise ApiError(errors.INVALID_DATA, f"secrets.{key} must be a string")

    now = utc_now()
    document: dict[str, Any] = {"createdAt": now, "updatedAt": now, **settings, "appId": app_id, "name": name}
    _apply_key_pair(app_secrets, sections.warnings)
    document["appToken"] = _kept_token(settings.get("appToken"), SCOPE_APP, app_id) or issue_app_token(app_id)
    app_secrets["appSecret"] = _kept_token(app_secrets.get("appSecret"), SCOPE_APP_SECRET, app_id) or issue_app_secret(app_id)
    key = get_secrets().encryption_key
    for field_name, value in app_secrets.items():
        if value:
            document[field_name] = encrypt_field(key, value, app_field_context(field_name, app_id))
    return document


def _check_setting_types(settings: dict[str, Any]) -> None:
    """Require the settings the server reads to have the JSON type of their defaults."""
    for key, default in APP_DEFAULTS.items():
        value = settings.get(key)
        if value is None:
            continue
        expected = type(default)
        if type(value) is not expected and not (expected is int and type(value) is float):
            raise ApiError(errors.INVALID_DATA, f"app.{key} must be of type {expected.__name__}")


def _apply_key_pair(app_secrets: dict[str, str], warnings: list[str]) -> None:
    """Check that the private and public key belong together; create a pair when both are absent."""
    private_key64 = app_secrets.get("appPrivateKey")
    public_key64 = app_secrets.get("appPublicKey")
    if not private_key64:
        if public_key64:
            raise ApiError(errors.INVALID_DATA, "secrets has appPublicKey without appPrivateKey")
        app_secrets["appPrivateKey"], app_secrets["appPublicKey"] = generate_app_key_pair()
        warnings.append("the file has no app key pair, so a new one was created; JWTs signed before do not verify")
        return
    try:
        private_key = load_app_private_key(private_key64)
    except (ValueError, TypeError):
        raise ApiError(errors.INVALID_DATA, "secrets.appPrivateKey is not a base64 PEM RSA private key") from None
    expected_public = public_key_base64(private_key)
    if public_key64 and public_key64.strip() != expected_public:
        raise ApiError(errors.INVALID_DATA, "secrets.appPublicKey does not belong to secrets.appPrivateKey")
    app_secrets["appPublicKey"] = public_key64 or expected_public


def _kept_token(token: Any, scope: str, app_id: str) -> str | None:
    """Return `token` when this server's current key signed it for `app_id` and `scope`, else None.

    A token of the previous server key is replaced, because it stops working when that key's
    overlap ends.
    """
    if not isinstance(token, str) or not token:
        return None
    try:
        claims = jwt.decode(token, server_public_key(), algorithms=ALGORITHMS, options={"verify_aud": False})
    except jwt.PyJWTError:
        return None
    return token if claims.get("scope") == scope and claims.get("appId") == app_id else None


def _record_documents(section: str, records: list[dict[str, Any]], app_id: str, keep_ids: bool) -> list[dict[str, Any]]:
    documents = []
    handles: set[str] = set()
    for index, record in enumerate(records):
        where = f"{section}[{index}]"
        document = {key: value for key, value in record.items() if key not in ("appId", "secrets", "__v")}
        if not keep_ids or not isinstance(document.get("_id"), ObjectId):
            document.pop("_id", None)
        _check_fields(document, where)
        _check_required_text(document, section, where)
        handle = document.get("handle")
        if section in ("users", "signups"):
            if handle in handles:
                raise ApiError(errors.INVALID_DATA, f"{where}: handle {handle!r} appears twice in {section}")
            handles.add(handle)
        if section == "users":
            _seal_user_secrets(document, record.get("secrets"), app_id, where)
        documents.append({**document, "appId": app_id})
    return documents


# Fields each kind of record must have as non-empty text.
REQUIRED_TEXT = {
    "users": ("handle",),
    "signups": ("handle",),
    "invites": ("handle",),
    "emailTemplates": ("templateName", "htmlTemplate"),
}


def _check_required_text(document: dict[str, Any], section: str, where: str) -> None:
    for name in REQUIRED_TEXT[section]:
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError(errors.INVALID_DATA, f"{where}: {name} must be non-empty text")
    if section == "users":
        version = document.get("tokenVersion", 0)
        if type(version) is not int:
            raise ApiError(errors.INVALID_DATA, f"{where}: tokenVersion must be an integer")
        if document.get("password") is not None and not isinstance(document["password"], str):
            raise ApiError(errors.INVALID_DATA, f"{where}: password must be a hash string")


def _seal_user_secrets(document: dict[str, Any], user_secrets: Any, app_id: str, where: str) -> None:
    if user_secrets is None:
        return
    if not isinstance(user_secrets, dict):
        raise ApiError(errors.INVALID_DATA, f"{where}: secrets must be an object")
    key = get_secrets().encryption_key
    for name, value in user_secrets.items():
        if not isinstance(value, str):
            raise ApiError(errors.INVALID_DATA, f"{where}: secrets.{name} must be a string")
        if value:
            document[name] = encrypt_field(key, value, user_field_context(name, app_id, document["handle"]))


_PLAIN_TYPES = (str, int, float, bool, datetime.datetime, ObjectId, type(None))


def _check_fields(value: Any, where: str, depth: int = 0) -> None:
    """Allow only plain JSON values, dates and ids, with keys MongoDB accepts, and no value
    encrypted elsewhere (it could not be decrypted here)."""
    if depth > MAX_NESTING:
        raise ApiError(errors.INVALID_DATA, f"{where} is nested deeper than {MAX_NESTING} levels")
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str) or not key or key.startswith("$") or "\0" in key:
                raise ApiError(errors.INVALID_DATA, f"{where} has a field name MongoDB does not accept")
            _check_fields(child, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for child in value:
            _check_fields(child, where, depth + 1)
    elif not isinstance(value, _PLAIN_TYPES):
        raise ApiError(errors.INVALID_DATA, f"{where} has a value of unsupported type {type(value).__name__}")
    elif isinstance(value, str) and value.startswith(GCM_PREFIX):
        raise ApiError(errors.INVALID_DATA, f"{where} is encrypted; an export carries secrets in plaintext")


def _write(app: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> None:
    """Replace whatever is stored under the app id with the imported documents.

    MongoDB-protocol servers without transactions (FerretDB) cannot make this atomic, so a
    failure removes what was written and reports the error.
    """
    app_id = app["appId"]
    for name in CLEARED_COLLECTIONS:
        db.collection(name).delete_many({"appId": app_id})
    replaced = db.collection(db.APPS).delete_one({"appId": app_id}).deleted_count
    app_cache.forget(app_id)
    try:
        for section, documents in records.items():
            if documents:
                db.collection(RECORD_SECTIONS[section]).insert_many(documents, ordered=True)
        db.collection(db.APPS).insert_one(app)
    except PyMongoError as error:
        for name in CLEARED_COLLECTIONS:
            db.collection(name).delete_many({"appId": app_id})
        # The error text can quote whole documents, password hashes included, so only its type
        # and code are reported.
        reason = f"{type(error).__name__} (code {getattr(error, 'code', None)})"
        removed = "; the app it replaced was removed too" if replaced else ""
        raise ApiError(
            errors.INTERNAL_SERVER_ERROR, f"import of app {app_id} failed with {reason} and was undone{removed}"
        ) from None
