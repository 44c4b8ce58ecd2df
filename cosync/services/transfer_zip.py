"""Reading the export ZIP of the CosyncJWT server into the sections of our export format.

CosyncJWT exports an app as five CSV files at the root of a ZIP archive: a header row of column
names, comma separators, `"` quoting with `""` escapes, every value text. Booleans are `true` or
`false`, dates are JavaScript `Date.toString` text (`Tue Aug 01 2023 10:00:00 GMT+0000 (...)`),
arrays are joined with commas, and objects are written as `[object Object]`, so metadata and
metadata definitions cannot be recovered from it. Secrets (the app's key pair, Twilio and
SendGrid credentials, TOTP seeds) are in plaintext.

The archive is read in memory; no entry is extracted to disk, so entry names cannot reach the
file system.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

APP_FILE = "app-collection.csv"
RECORD_FILES = {
    "users": "user-collection.csv",
    "signups": "signup-collection.csv",
    "invites": "invite-collection.csv",
    "emailTemplates": "email-template-collection.csv",
}

MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
)}


class ReferenceZipError(ValueError):
    """The archive is not a well-formed CosyncJWT export; the message names the file and row."""


@dataclass
class ConvertedExport:
    app: dict[str, Any]
    secrets: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Cell conversions: each returns the value to store, or raises ValueError with the reason.


def _text(cell: str) -> str:
    return cell


def _boolean(cell: str) -> bool:
    if cell not in ("true", "false"):
        raise ValueError("expected true or false")
    return cell == "true"


def _integer(cell: str) -> int:
    if not cell.lstrip("-").isdigit() or not cell.isascii():
        raise ValueError("expected an integer")
    return int(cell)


def _date(cell: str) -> datetime.datetime:
    """Parse JavaScript `Date.toString` text, such as `Tue Aug 01 2023 10:00:00 GMT+0000 (UTC)`.

    ISO 8601 text is accepted too.
    """
    parts = cell.split(" ")
    if len(parts) >= 6 and parts[1] in MONTHS and parts[5].startswith("GMT") and len(parts[5]) >= 8:
        try:
            hour, minute, second = (int(value) for value in parts[4].split(":"))
            offset = parts[5][3:8]
            sign = -1 if offset[0] == "-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
            local = datetime.datetime(int(parts[3]), MONTHS[parts[1]], int(parts[2]), hour, minute, second, tzinfo=zone)
        except ValueError:
            raise ValueError("expected a date") from None
        return local.astimezone(datetime.timezone.utc)
    try:
        parsed = datetime.datetime.fromisoformat(cell)
    except ValueError:
        raise ValueError("expected a date") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)).astimezone(datetime.timezone.utc)


def _comma_list(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(",") if item.strip()]


class _Lost:
    """A column that the reference export writes as `[object Object]`; JSON text is read."""

    def __init__(self, empty: Any) -> None:
        self.empty = empty

    def __call__(self, cell: str) -> Any:
        try:
            value = json.loads(cell)
        except ValueError:
            raise _LostValue() from None
        if type(value) is not type(self.empty):
            raise _LostValue()
        return value


class _LostValue(Exception):
    """A cell whose value the reference export could not write."""


# Sealed app fields go to the secrets section; the importing server encrypts them.
APP_SECRET_COLUMNS = frozenset({
    "appPrivateKey", "appPublicKey", "appSecret", "emailExtensionAPIKey",
    "TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber",
})
USER_SECRET_COLUMNS = frozenset({"googleSecretKey"})

Columns = dict[str, Callable[[str], Any]]

APP_COLUMNS: Columns = {
    **{name: _text for name in (
        "name", "status", "appToken", "handle", "signupFlow", "twoFactorVerification",
        "emailExtensionSenderEmail", "googleAppName", "maxLoginAttempts", "realmAppId",
    )},
    **{name: _text for name in APP_SECRET_COLUMNS},
    **{name: _boolean for name in (
        "jwtEnabled", "invitationEnabled", "signupEnabled", "emailExtension", "passwordFilter", "metaDataEmail",
    )},
    **{name: _integer for name in (
        "passwordMinLength", "passwordMinUpper", "passwordMinLower", "passwordMinDigit",
        "passwordMinSpecial", "userJWTExpiration",
    )},
    "appData": _Lost({}),
    "metaData": _Lost([]),
    "metaDataInvite": _Lost([]),
    "locales": _comma_list,
    "createdAt": _date,
    "updatedAt": _date,
}

RECORD_COLUMNS: dict[str, Columns] = {
    "users": {
        **{name: _text for name in (
            "handle", "password", "status", "googleSecretKey", "twoFactorCode", "phone", "locale",
        )},
        **{name: _boolean for name in ("twoFactorPhoneVerification", "twoFactorGoogleVerification", "phoneVerified")},
        "phoneCode": _integer,
        "metaData": _Lost({}),
        **{name: _date for name in ("lastLogin", "createdAt", "updatedAt")},
    },
    "signups": {
        **{name: _text for name in ("handle", "password", "status", "locale")},
        "code": _integer,
        "metaData": _Lost({}),
        **{name: _date for name in ("createdAt", "updatedAt")},
    },
    "invites": {
        **{name: _text for name in ("handle", "senderHandle", "senderUserId", "status")},
        "code": _integer,
        "metaData": _Lost({}),
        **{name: _date for name in ("createdAt", "updatedAt")},
    },
    "emailTemplates": {
        **{name: _text for name in ("subject", "replyTo", "templateName", "htmlTemplate", "locale")},
        **{name: _date for name in ("createdAt", "updatedAt")},
    },
}
# The `appId` column names the exporting server's app; the importing server sets its own.
IGNORED_COLUMNS = frozenset({"appId"})


# ---------------------------------------------------------------------------------------------
# Reading


def read_reference_zip(content: bytes, max_uncompressed_bytes: int) -> ConvertedExport:
    """Convert a CosyncJWT export ZIP; raise ReferenceZipError when it is not well formed."""
    files = _read_members(content, max_uncompressed_bytes)
    warnings: list[str] = []
    app_rows = _rows(files[APP_FILE], APP_FILE)
    if not app_rows:
        raise ReferenceZipError(f"{APP_FILE} has no app row")
    app, lost = _convert_row(app_rows[0], APP_COLUMNS, APP_FILE, 2, warnings)
    for name in lost:
        app[name] = APP_COLUMNS[name].empty
        # `appData` only records MongoDB Realm integrations, which this server does not offer.
        if name != "appData":
            warnings.append(f"app {name} is not in the CosyncJWT export (it writes [object Object]); set it again")
    secrets = {name: app.pop(name) for name in APP_SECRET_COLUMNS if name in app}

    records: dict[str, list[dict[str, Any]]] = {}
    for section, file_name in RECORD_FILES.items():
        records[section] = _convert_records(section, file_name, _rows(files[file_name], file_name), warnings)
    return ConvertedExport(app=app, secrets=secrets, records=records, warnings=warnings)


def _read_members(content: bytes, limit: int) -> dict[str, str]:
    """Return the text of the five CSV files, refusing archives that expand beyond `limit`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        names = set(archive.namelist())
        missing = sorted({APP_FILE, *RECORD_FILES.values()} - names)
        if missing:
            raise ReferenceZipError(f"the archive lacks {', '.join(missing)} at its root")
        files = {}
        remaining = limit
        for name in (APP_FILE, *RECORD_FILES.values()):
            with archive.open(name) as member:
                data = member.read(remaining + 1)
            remaining -= len(data)
            if remaining < 0:
                raise ReferenceZipError(f"the CSV files expand beyond {limit} bytes")
            files[name] = data.decode("utf-8-sig")
        return files
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError) as error:
        raise ReferenceZipError(f"the archive cannot be read: {error}") from None
    except UnicodeDecodeError:
        raise ReferenceZipError("a CSV file is not UTF-8") from None


def _rows(text: str, file_name: str) -> list[dict[str, str]]:
    """Return the records of a CSV file as dicts keyed by the header; a repeated column keeps its first cell."""
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise ReferenceZipError(f"{file_name} is not valid CSV: {error}") from None
    if not table:
        raise ReferenceZipError(f"{file_name} has no header row")
    header = table[0]
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue
        if len(cells) != len(header):
            raise ReferenceZipError(f"{file_name} row {number} has {len(cells)} cells, the header {len(header)}")
        row: dict[str, str] = {}
        for name, cell in zip(header, cells):
            row.setdefault(name, cell)
        rows.append(row)
    return rows


def _convert_records(section: str, file_name: str, rows: list[dict[str, str]], warnings: list[str]) -> list[dict[str, Any]]:
    columns = RECORD_COLUMNS[section]
    records = []
    lost_count = 0
    for number, row in enumerate(rows, start=2):
        record, lost = _convert_row(row, columns, file_name, number, warnings)
        if "metaData" in lost:
            record["metaData"] = {}
            lost_count += 1
        if section == "users":
            user_secrets = {name: record.pop(name) for name in USER_SECRET_COLUMNS if name in record}
            if user_secrets:
                record["secrets"] = user_secrets
        records.append(record)
    if lost_count:
        warnings.append(f"metaData of {lost_count} {section} is not in the CosyncJWT export; it is empty now")
    return records


def _convert_row(
    row: dict[str, str], columns: Columns, file_name: str, number: int, warnings: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Convert one CSV record; return the fields and the names of the cells that were lost."""
    converted: dict[str, Any] = {}
    lost = []
    for name, cell in row.items():
        if name in IGNORED_COLUMNS:
            continue
        convert = columns.get(name)
        if convert is None:
            message = f"{file_name}: column {name!r} is not part of the CosyncJWT export and was skipped"
            if message not in warnings:
                warnings.append(message)
            continue
        if cell == "":
            continue
        try:
            converted[name] = convert(cell)
        except _LostValue:
            lost.append(name)
        except ValueError as error:
            raise ReferenceZipError(f"{file_name} row {number}, column {name}: {error}") from None
    return converted, lost
