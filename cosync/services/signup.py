"""Self sign-up with e-mail verification: `signup` and `completeSignup`.

Flow `code` e-mails a code that the app sends back; flow `link` e-mails a link to a
confirmation page (see `cosync.services.signup_link`) whose button sends the same code.

A pending sign-up is one `signups` document per (app, handle), as in CosyncJWT. Each call to
`signup` adds its own entry to `signupcodes`: a code (stored as a keyed hash) with the password
hash, metadata and expiry of that call, so a repeated sign-up never changes the password that
an earlier code unlocks. The newest `MAX_PENDING_CODES` entries count, each code dies after
`MAX_FAILED_ATTEMPTS` wrong guesses, and a handle gets at most
`ratelimit.SIGNUP_MAILS_PER_HANDLE` codes a day. Codes and attempts are stored one document
each, so none is lost when requests for one handle run in parallel, also on FerretDB.

A pending sign-up written by CosyncJWT keeps its numeric `code` and bcrypt `password` on the
`signups` document and has no entries; it counts as one more entry (see `legacy_entry`), which
expires 48 hours after the document's `updatedAt`.

Anyone with a victim's address can sign up with it too, and the victim cannot tell the
two code mails apart. When live entries carry different passwords (the sign-up is contested),
completing it creates the account without a password: the code proves the mailbox, not the
password, and the owner then sets one through password reset.
"""

from __future__ import annotations

import datetime
import html
import secrets
from typing import Any
from urllib.parse import urlencode

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from cosync import audit, counters, db, errors, ratelimit, templates
from cosync.crypto import codes_equal, hash_code, hash_password, verify_password
from cosync.errors import ApiError
from cosync.mail import MailError
from cosync.messages import send_template
from cosync.secrets import get_secrets
from cosync.settings import get_settings
from cosync.dates import utc_now
from cosync.services.accounts import insert_user, new_user, welcome
from cosync.services.apps import load_active_app, setting, signing_key
from cosync.services.sessions import legacy_user_token
from cosync.stored_formats import numeric_code
from cosync.validation import parse_locale, parse_metadata, require_code, require_email_handle, require_password

SIGNUP_CODE_LIFETIME = datetime.timedelta(hours=48)
MAX_PENDING_CODES = 3
MAX_FAILED_ATTEMPTS = 5
CODE_PURPOSE = "signup"

# Values of `signups.status`, as CosyncJWT writes them.
PENDING = "pending"
VERIFIED = "verified"
ACTIVE = "active"


def new_code() -> str:
    """Return a six-digit code from the operating system's CSPRNG, 100000 to 999999."""
    return str(100000 + secrets.randbelow(900000))


def check_signup_enabled(app: dict[str, Any]) -> None:
    if not setting(app, "signupEnabled"):
        raise ApiError(errors.APP_ISNOT_SIGNUPABLE, f"sign-up is off for app {app['appId']}")


def signup(app_id: str, body: dict[str, Any], address: str) -> Any:
    """Start a sign-up: e-mail a code (flow `code`) or a link (flow `link`, and any other
    value, as in CosyncJWT), or create the user at once (flow `none`)."""
    app = load_active_app(app_id)
    check_signup_enabled(app)
    handle = require_email_handle(body)
    password = require_password(body)
    locale = parse_locale(body, setting(app, "locales"))
    metadata = parse_metadata(body, setting(app, "metaData"))
    flow = setting(app, "signupFlow")
    if flow == "none":
        ratelimit.hit(ratelimit.SIGNUP_PER_ADDRESS, f"{app_id}:{address}")
        return _signup_without_verification(app, handle, password, locale, metadata)

    # Both limits are counted in one command. A handle that turns out to have an account gets
    # its mail slot back, because no mail is sent.
    slots = ratelimit.hit_many([
        (ratelimit.SIGNUP_PER_ADDRESS, f"{app_id}:{address}"),
        (ratelimit.SIGNUP_MAILS_PER_HANDLE, f"{app_id}:{handle}"),
    ])
    if db.collection(db.USERS).find_one({"appId": app_id, "handle": handle}, {"_id": 1}) is not None:
        counters.release(slots[1:])
        _reject_registered_handle(app_id, handle)
    code = new_code()
    _add_pending_code(app_id, handle, code, password, locale, metadata)
    try:
        if flow == "code":
            send_template(app, templates.SIGN_UP, handle, locale, {"HANDLE": handle, "CODE": code})
        else:
            send_signup_link(app, handle, locale, code)
    except MailError as error:
        audit.record(app_id, "signup", "error", handle, reason="sign-up mail failed")
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"sign-up mail failed: {error}") from None
    audit.record(app_id, "signup", "success", handle)
    return True


def _reject_registered_handle(app_id: str, handle: str) -> None:
    audit.record(app_id, "signup", "error", handle, code=errors.HANDLE_ALREADY_REGISTERED.code)
    raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "handle already has an account")


def completion_link(app: dict[str, Any], handle: str, code: str) -> str:
    """Return the e-mailed link to GET completeSignup, which shows the confirmation page.

    CosyncJWT encodes only `+` in the handle (as `%2B`); encoding every query value the
    standard way reads back the same.
    """
    query = urlencode({"appToken": app["appToken"], "handle": handle, "code": code})
    return f"{get_settings().public_base_url}/api/appuser/completeSignup?{query}"


def send_signup_link(app: dict[str, Any], handle: str, locale: str, code: str) -> None:
    """E-mail the `signUpLink` template, whose `%LINK%` becomes an anchor to the completion link."""
    template = templates.find_template(db.get_database(), app["appId"], templates.SIGN_UP_LINK, locale)
    link = completion_link(app, handle, code)
    anchor = f'<a href="{html.escape(link, quote=True)}">{html.escape(template.link_text)}</a>'
    values = {"HANDLE": handle, "LINK": anchor}
    send_template(app, templates.SIGN_UP_LINK, handle, locale, values, raw=frozenset({"LINK"}))


def _add_pending_code(
    app_id: str, handle: str, code: str, password: str, locale: str, metadata: dict[str, Any]
) -> None:
    """Record a new code entry for the handle's pending sign-up, creating or reviving it."""
    now = utc_now()
    expires_at = now + SIGNUP_CODE_LIFETIME
    signups = db.collection(db.SIGNUPS)
    fields = {"status": PENDING, "locale": locale, "metaData": metadata, "updatedAt": now, "expiresAt": expires_at}
    query = {"appId": app_id, "handle": handle}
    update = {"$set": fields, "$setOnInsert": {"createdAt": now}}
    try:
        # No projection: FerretDB 1.x rejects one in findAndModify.
        before = signups.find_one_and_update(query, update, upsert=True, return_document=ReturnDocument.BEFORE)
    except DuplicateKeyError:
        # A parallel request inserted the document first; update the one it created.
        before = signups.find_one_and_update(query, {"$set": fields})

    # Code entries are deleted with their sign-up document, so a new document has none.
    entries = [] if before is None else with_legacy_entry(pending_entries(app_id, handle), before)
    live = [entry for entry in entries if entry["expiresAt"] > now]
    contested = bool(live) and not verify_password(password, live[0].get("password"))[0]
    db.collection(db.SIGNUP_CODES).insert_one({
        "appId": app_id,
        "handle": handle,
        "codeHash": hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code),
        "password": hash_password(password),
        "contested": contested,
        "locale": locale,
        "metaData": metadata,
        "createdAt": now,
        "expiresAt": expires_at,
    })


def _signup_without_verification(
    app: dict[str, Any], handle: str, password: str, locale: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    user = new_user(app["appId"], handle, hash_password(password), locale, metadata)
    # The unique (app, handle) index rejects a handle that already has an account.
    try:
        insert_user(app, user)
    except ApiError as error:
        if error.error is errors.HANDLE_ALREADY_REGISTERED:
            _reject_registered_handle(app["appId"], handle)
        raise
    db.collection(db.SIGNUPS).update_one(
        {"appId": app["appId"], "handle": handle},
        {"$set": {"status": ACTIVE, "locale": locale, "metaData": metadata, "updatedAt": user["createdAt"]},
         "$setOnInsert": {"createdAt": user["createdAt"]},
         "$unset": {"code": "", "password": "", "expiresAt": ""}},
        upsert=True,
    )
    session = welcome(app, user)
    audit.record(app["appId"], "signup", "success", handle, flow="none")
    # The reference server returns the sign-up code here as a number. This flow has no code to
    # verify, so a random one is returned only to keep the response shape.
    code = new_code()
    return {**session, "code": int(code), "signed-user-token": legacy_user_token(user, app, signing_key(app), code)}


def complete_signup(app_id: str, body: dict[str, Any], address: str) -> dict[str, Any]:
    """Verify a sign-up code and create the user; return the session tokens and the legacy
    `signed-user-token`."""
    app = load_active_app(app_id)
    check_signup_enabled(app)
    handle = require_email_handle(body)
    code = require_code(body)
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{address}")

    entries, alive = _entries_for_attempt(app_id, handle)
    entry = _matching_entry(alive, app_id, handle, code)
    if entry is None:
        audit.record(app_id, "completeSignup", "error", handle, code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "wrong sign-up code")
    if entry["expiresAt"] <= utc_now():
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "sign-up code expired")

    locale = entry.get("locale") or "EN"
    # Entries whose guesses are used up still count here: their passwords were offered too.
    contested = any(item.get("contested") for item in entries if item["expiresAt"] > utc_now())
    password_hash = "" if contested else entry["password"]
    user = new_user(app_id, handle, password_hash, locale, entry.get("metaData") or {})
    insert_user(app, user)
    query = {"appId": app_id, "handle": handle}
    db.collection(db.SIGNUPS).update_one(
        query,
        {"$set": {"status": VERIFIED, "locale": locale, "metaData": user["metaData"], "updatedAt": user["createdAt"]},
         "$unset": {"expiresAt": "", "code": "", "password": ""}},
    )
    db.collection(db.SIGNUP_CODES).delete_many(query)
    session = welcome(app, user)
    audit.record(app_id, "completeSignup", "success", handle, contested=contested)
    return {**session, "signed-user-token": legacy_user_token(user, app, signing_key(app), code)}


def _entries_for_attempt(app_id: str, handle: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the pending entries, and those of them that may still be guessed, counting this
    attempt on each of the latter.

    Every entry the guess is compared with gives up one of its attempts first, so parallel
    guesses cannot exceed the limit: each must win a counter slot.
    """
    record = db.collection(db.SIGNUPS).find_one({"appId": app_id, "handle": handle}, LEGACY_FIELDS)
    if record is None:
        raise ApiError(errors.INVALID_DATA, "no pending sign-up for this handle")
    # CosyncJWT's schema default: a document without `status` is pending.
    status = record.get("status", PENDING)
    if status == VERIFIED:
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "sign-up already completed")
    if status != PENDING:
        raise ApiError(errors.INVALID_DATA, f"sign-up status is {status!r}")
    entries = with_legacy_entry(pending_entries(app_id, handle), record)
    if not entries and _status(app_id, handle) == VERIFIED:
        # A parallel completion verified the sign-up and removed its codes after the read above.
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "sign-up already completed")
    alive = [
        entry for entry in entries
        if counters.claim(f"{CODE_PURPOSE}-code:{entry['_id']}", MAX_FAILED_ATTEMPTS, entry["expiresAt"])
    ]
    if not alive:
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "no live code: too many wrong guesses or expired; sign up again")
    return entries, alive


def _status(app_id: str, handle: str) -> str | None:
    record = db.collection(db.SIGNUPS).find_one({"appId": app_id, "handle": handle}, {"status": 1})
    return None if record is None else record.get("status", PENDING)


def pending_entries(app_id: str, handle: str, projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Return the code entries that still count for a pending sign-up, newest first."""
    cursor = db.collection(db.SIGNUP_CODES).find({"appId": app_id, "handle": handle}, projection)
    return list(cursor.sort([("createdAt", -1), ("_id", -1)]).limit(MAX_PENDING_CODES))


# The `signups` fields that make up a pending sign-up of CosyncJWT.
LEGACY_FIELDS = {"appId": 1, "handle": 1, "status": 1, "code": 1, "password": 1, "locale": 1, "metaData": 1, "createdAt": 1, "updatedAt": 1}


def legacy_entry(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the code entry of a pending sign-up that CosyncJWT wrote, or None.

    CosyncJWT keeps one numeric code per pending sign-up on the `signups` document and lets it
    live 48 hours from `updatedAt`. The entry's `_id` keys its attempt counter.
    """
    if record is None or record.get("status", PENDING) != PENDING:
        return None
    code = numeric_code(record.get("code"))
    started = record.get("updatedAt") or record.get("createdAt")
    if code is None or not isinstance(started, datetime.datetime):
        return None
    app_id, handle = record["appId"], record["handle"]
    return {
        "_id": f"legacy-{record['_id']}",
        "codeHash": hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code),
        "password": record.get("password") or "",
        "contested": False,
        "locale": record.get("locale"),
        "metaData": record.get("metaData") if isinstance(record.get("metaData"), dict) else {},
        "createdAt": started,
        "expiresAt": started + SIGNUP_CODE_LIFETIME,
    }


def with_legacy_entry(entries: list[dict[str, Any]], record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Add the CosyncJWT code entry of `record`, if it has one, to `entries` (newest first)."""
    entry = legacy_entry(record)
    if entry is None:
        return entries
    return sorted([*entries, entry], key=lambda item: item["createdAt"], reverse=True)


def _matching_entry(entries: list[dict[str, Any]], app_id: str, handle: str, code: str) -> dict[str, Any] | None:
    expected = hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code)
    match = None
    # Compare with every entry, so the time taken does not depend on which one matches.
    for entry in entries:
        if isinstance(entry.get("codeHash"), str) and codes_equal(entry["codeHash"], expected):
            match = entry
    return match
