"""Invitations: a user (`invite`) or the operator (`createAppInvite`) invites an e-mail address,
and the invitee creates an account with the e-mailed code (`register`).

An invite is an `invites` document per (app, invitee, sender). Its code is six digits from
the operating system's CSPRNG, stored only as a keyed hash (`codeHash`), and expires
`INVITE_CODE_LIFETIME` after it was sent. All codes of one invitee share the guesses of each
attempt, and a code dies after `MAX_FAILED_ATTEMPTS` wrong guesses. Registering marks the
invite `verified`, and the handle then belongs to the new account, so a code works once.

Because only the hash is stored, re-inviting or resending mails a new code that replaces the
old one; the mail goes out before the new hash is stored, so a failed mail leaves the old code
valid. Invites from a CosyncJWT database carry their code in clear (`code`) and no expiry;
they are accepted until `INVITE_CODE_LIFETIME` after their last update.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from cosync import audit, counters, db, errors, ratelimit, templates
from cosync.auth import Caller
from cosync.crypto import codes_equal, hash_code, hash_password
from cosync.dates import iso, utc_now
from cosync.dotpath import set_path
from cosync.errors import ApiError
from cosync.mail import MailError
from cosync.messages import send_template
from cosync.secrets import get_secrets
from cosync.services.accounts import insert_user, new_user, welcome
from cosync.services.apps import check_app_active, load_active_app, load_app, setting, signing_key
from cosync.services.sessions import legacy_user_token
from cosync.services.signup import new_code
from cosync.services.users import load_user
from cosync.stored_formats import numeric_code
from cosync.validation import (
    EMAIL_PATTERN,
    normalise_handle,
    optional_text,
    parse_locale,
    parse_metadata,
    parse_registration_metadata,
    require_code,
    require_email_handle,
    require_password,
    require_text,
)

INVITE_CODE_LIFETIME = datetime.timedelta(days=7)
MAX_FAILED_ATTEMPTS = 5
CODE_PURPOSE = "invite"
# `senderHandle` and `senderUserId` of invites the operator sends, as CosyncJWT writes them.
OPERATOR_SENDER = "superuser"
MAX_INVITEES_PER_REQUEST = 100
MAX_SEARCH_PAGE_SIZE = 200
DEFAULT_SEARCH_PAGE_SIZE = 50

PENDING = "pending"
VERIFIED = "verified"


def _check_invitations_enabled(app: dict[str, Any]) -> None:
    if not setting(app, "invitationEnabled"):
        raise ApiError(errors.APP_ISNOT_INVITATBLE, f"invitations are off for app {app['appId']}")


def _code_hash(app_id: str, handle: str, code: str) -> str:
    return hash_code(get_secrets().encryption_key, CODE_PURPOSE, app_id, handle, code)


def _mail_new_code(app: dict[str, Any], invitee: str, locale: str) -> str:
    """E-mail a new invitation code to `invitee` and return its hash; raise MailError on failure."""
    code = new_code()
    send_template(app, templates.INVITE, invitee, locale, {"HANDLE": invitee, "CODE": code})
    return _code_hash(app["appId"], invitee, code)


def _issue(
    app: dict[str, Any], invitee: str, sender_handle: str, sender_user_id: str, metadata: dict[str, Any], locale: str
) -> dict[str, Any]:
    """Mail a code to `invitee` and store it in the sender's pending invite, creating the invite
    or replacing its earlier code; return the stored invite."""
    code_hash = _mail_new_code(app, invitee, locale)
    now = utc_now()
    query = {"appId": app["appId"], "handle": invitee, "senderHandle": sender_handle, "status": PENDING}
    fields = {
        "senderUserId": sender_user_id,
        "metaData": metadata,
        "codeHash": code_hash,
        "locale": locale,
        "updatedAt": now,
        "expiresAt": now + INVITE_CODE_LIFETIME,
    }
    invites = db.collection(db.INVITES)
    invites.update_one(query, {"$set": fields, "$setOnInsert": {"createdAt": now}, "$unset": {"code": ""}}, upsert=True)
    return invites.find_one({**query, "codeHash": code_hash})


def expiry_of(invite: dict[str, Any]) -> datetime.datetime:
    """Return when the invite's code expires (see the module docstring for CosyncJWT invites)."""
    if isinstance(invite.get("expiresAt"), datetime.datetime):
        return invite["expiresAt"]
    issued = invite.get("updatedAt") or invite.get("createdAt")
    if not isinstance(issued, datetime.datetime):
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return issued + INVITE_CODE_LIFETIME


def invite(caller: Caller, body: dict[str, Any]) -> bool:
    """Invite `handle` on behalf of the signed-in user and e-mail the code."""
    invitee = require_email_handle(body)
    app = load_active_app(caller.app_id)
    _check_invitations_enabled(app)
    metadata = parse_metadata(body, setting(app, "metaDataInvite"))
    locale = parse_locale(body, setting(app, "locales"))
    inviter = load_user(caller)
    if inviter.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"inviter status is {inviter.get('status')!r}")
    # Realm user ids are gone with MongoDB App Services, and Swift sends an empty value for a
    # nil id, so the inviter's handle is stored in place of a missing one.
    sender_user_id = optional_text(body, "senderUserId") or caller.handle

    if db.collection(db.USERS).find_one({"appId": caller.app_id, "handle": invitee}, {"_id": 1}) is not None:
        audit.record(caller.app_id, "invite", "error", caller.handle, email=invitee, code=errors.HANDLE_ALREADY_REGISTERED.code)
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "invitee already has an account")
    ratelimit.hit(ratelimit.INVITE_MAILS_PER_USER, f"{caller.app_id}:{caller.handle}")
    try:
        _issue(app, invitee, caller.handle, sender_user_id, metadata, locale)
    except MailError as error:
        audit.record(caller.app_id, "invite", "error", caller.handle, email=invitee, reason="invitation mail failed")
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"invitation mail failed: {error}") from None
    audit.record(caller.app_id, "invite", "success", caller.handle, email=invitee)
    return True


def register(app_id: str, body: dict[str, Any], client_address: str) -> dict[str, str]:
    """Create the invitee's account from an invitation code; return the session tokens."""
    for name in ("handle", "password", "code"):
        if body.get(name) is None or body.get(name) == "":
            raise ApiError(errors.MISSING_PARAM, f"field {name} is missing")
    handle = require_email_handle(body)
    password = require_password(body)
    code = require_code(body)
    app = load_active_app(app_id)
    _check_invitations_enabled(app)
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{client_address}")

    redeemed = _redeemable_invite(app_id, handle, code)
    locale = parse_locale(body, setting(app, "locales"))
    metadata = parse_registration_metadata(body, setting(app, "metaData"))
    _merge(metadata, redeemed.get("metaData"))
    users = db.collection(db.USERS)
    if users.find_one({"appId": app_id, "handle": handle}, {"_id": 1}) is not None:
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "handle already has an account")

    user = new_user(app_id, handle, hash_password(password), locale, metadata)
    insert_user(app, user, missing_metadata=errors.INVALID_METADATA)
    db.collection(db.INVITES).update_one(
        {"_id": redeemed["_id"]},
        {"$set": {"status": VERIFIED, "updatedAt": user["createdAt"]}, "$unset": {"expiresAt": ""}},
    )
    session = welcome(app, user)
    sender = redeemed.get("senderHandle")
    session["signed-user-token"] = legacy_user_token(user, app, signing_key(app), code, sender)
    audit.record(app_id, "register", "success", handle, sender=sender)
    return session


def _redeemable_invite(app_id: str, handle: str, code: str) -> dict[str, Any]:
    """Return the pending invite that `code` unlocks, counting this attempt on each invite of
    the handle; raise 602 for a wrong code, 411 for an expired or exhausted one, 601 for a
    used one."""
    candidates = list(db.collection(db.INVITES).find({"appId": app_id, "handle": handle, "status": {"$in": [PENDING, VERIFIED]}}))
    if not candidates:
        raise ApiError(errors.INVALID_DATA, "no invite for this handle")
    alive = [
        candidate for candidate in candidates
        if counters.claim(_attempts_key(candidate), MAX_FAILED_ATTEMPTS, expiry_of(candidate))
    ]
    if not alive:
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "every invite code of this handle is used up; invite again")

    expected = _code_hash(app_id, handle, code)
    match = None
    # Compare with every invite, so the time taken does not depend on which one matches.
    for candidate in alive:
        if _code_matches(candidate, expected, code):
            match = candidate
    if match is None:
        audit.record(app_id, "register", "error", handle, code=errors.INVALID_DATA.code)
        raise ApiError(errors.INVALID_DATA, "wrong invite code")
    if match.get("status") == VERIFIED:
        raise ApiError(errors.HANDLE_ALREADY_REGISTERED, "invite already used")
    if expiry_of(match) <= utc_now():
        raise ApiError(errors.SIGNUP_CODE_EXPRIRED, "invite code expired")
    return match


def _attempts_key(invite: dict[str, Any]) -> str:
    # A new code starts a new count, so the key names the code as well as the invite.
    code_id = str(invite.get("codeHash") or "legacy")[:16]
    return f"{CODE_PURPOSE}-code:{invite['_id']}:{code_id}"


def _code_matches(invite: dict[str, Any], expected_hash: str, code: str) -> bool:
    stored = invite.get("codeHash")
    if isinstance(stored, str):
        return codes_equal(stored, expected_hash)
    legacy = numeric_code(invite.get("code"))
    return legacy is not None and codes_equal(legacy, code)


def _merge(target: dict[str, Any], source: Any, prefix: str = "") -> None:
    """Copy every value of the invite's metadata into `target`; the invite's values win."""
    if not isinstance(source, dict):
        return
    for key, value in source.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _merge(target, value, f"{path}.")
        else:
            set_path(target, path, value)


# Operator side (`/api/app/...Invite` and `python -m cosync invites ...`).


def _parse_addresses(handles: Any) -> list[str]:
    """Return the distinct e-mail addresses of a comma-separated string or a list, lower-cased."""
    if handles is None or handles == "" or handles == []:
        raise ApiError(errors.MISSING_PARAM, "field handle is missing")
    parts = handles if isinstance(handles, list) else [handles]
    if not all(isinstance(part, str) for part in parts):
        raise ApiError(errors.INVALID_DATA, "field handle must be text")
    addresses: list[str] = []
    for part in parts:
        for item in part.split(","):
            if not item.strip():
                continue
            address = normalise_handle(item)
            if not EMAIL_PATTERN.fullmatch(address):
                raise ApiError(errors.INVALID_DATA, f"{address!r} is not an e-mail address")
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise ApiError(errors.MISSING_PARAM, "field handle is missing")
    if len(addresses) > MAX_INVITEES_PER_REQUEST:
        raise ApiError(errors.INVALID_DATA, f"at most {MAX_INVITEES_PER_REQUEST} addresses per request")
    return addresses


def invite_view(invite: dict[str, Any]) -> dict[str, Any]:
    """The invite as operator routes return it: without its code or code hash."""
    hidden = {"code", "codeHash", "__v"}
    view = {key: iso(value) for key, value in invite.items() if key not in hidden}
    view["_id"] = str(invite["_id"])
    return view


def _has_live_invite(app_id: str, handle: str) -> bool:
    pending = db.collection(db.INVITES).find({"appId": app_id, "handle": handle, "status": PENDING})
    now = utc_now()
    return any(expiry_of(item) > now for item in pending)


def create_app_invites(app_id: Any, handles: Any, locale: Any = None) -> dict[str, list[Any]]:
    """Invite each address as the operator; return the new invites, the addresses skipped
    because they have an account or a live invite, and those whose mail failed."""
    app = load_active_app(_require_app_id(app_id))
    addresses = _parse_addresses(handles)
    _check_invitations_enabled(app)
    invite_locale = parse_locale({"locale": locale}, setting(app, "locales"))

    result: dict[str, list[Any]] = {"invites": [], "exists": [], "failed": []}
    users = db.collection(db.USERS)
    for address in addresses:
        if users.find_one({"appId": app["appId"], "handle": address}, {"_id": 1}) or _has_live_invite(app["appId"], address):
            result["exists"].append(address)
            continue
        try:
            issued = _issue(app, address, OPERATOR_SENDER, OPERATOR_SENDER, {}, invite_locale)
        except MailError:
            result["failed"].append(address)
            continue
        result["invites"].append(invite_view(issued))
    audit.record(
        app["appId"], "createAppInvite", "success", log_type="app",
        invited=[item["handle"] for item in result["invites"]], exists=result["exists"], failed=result["failed"],
    )
    return result


def _require_app_id(app_id: Any) -> str:
    if app_id is None or app_id == "":
        raise ApiError(errors.MISSING_PARAM, "field appId is missing")
    if not isinstance(app_id, str):
        raise ApiError(errors.INVALID_DATA, "field appId must be text")
    return app_id


def _require_invitee(handle: Any) -> str:
    return normalise_handle(require_text({"handle": handle}, "handle"))


def resend_app_invite(app_id: Any, handle: Any) -> bool:
    """Mail a new code for the address's newest pending invite; the old code stops working."""
    app = load_active_app(_require_app_id(app_id))
    invitee = _require_invitee(handle)
    _check_invitations_enabled(app)
    invites = db.collection(db.INVITES)
    pending = list(invites.find({"appId": app["appId"], "handle": invitee, "status": PENDING}).sort("updatedAt", -1).limit(1))
    if not pending:
        raise ApiError(errors.INVALID_DATA, "no pending invite for this address")
    try:
        code_hash = _mail_new_code(app, invitee, pending[0].get("locale") or "EN")
    except MailError as error:
        raise ApiError(errors.INTERNAL_SERVER_ERROR, f"invitation mail failed: {error}") from None
    now = utc_now()
    invites.update_one(
        {"_id": pending[0]["_id"]},
        {"$set": {"codeHash": code_hash, "updatedAt": now, "expiresAt": now + INVITE_CODE_LIFETIME}, "$unset": {"code": ""}},
    )
    audit.record(app["appId"], "resendAppInvite", "success", invitee, log_type="app")
    return True


def remove_app_invite(app_id: Any, handle: Any) -> dict[str, Any]:
    """Delete every invite of the address; return the newest of them."""
    app = load_app(_require_app_id(app_id))
    check_app_active(app)
    invitee = _require_invitee(handle)
    invites = db.collection(db.INVITES)
    found = list(invites.find({"appId": app["appId"], "handle": invitee}).sort("updatedAt", -1))
    if not found:
        raise ApiError(errors.INVALID_DATA, "no invite for this address")
    invites.delete_many({"_id": {"$in": [item["_id"] for item in found]}})
    audit.record(app["appId"], "removeAppInvite", "success", invitee, log_type="app", removed=len(found))
    return invite_view(found[0])


def search_invites(app_id: Any, value: Any, page: Any = None, limit: Any = None) -> list[dict[str, Any]]:
    """Return one page of the app's invites whose address contains `value` (any case), by address."""
    app = load_app(_require_app_id(app_id))
    text = require_text({"value": value}, "value").strip().lower()
    if len(text) > 254:
        raise ApiError(errors.INVALID_DATA, "search value is too long")
    page_number = _positive_integer(page, "page", 1, None)
    page_size = _positive_integer(limit, "limit", DEFAULT_SEARCH_PAGE_SIZE, MAX_SEARCH_PAGE_SIZE)
    # The value is matched literally: escaped, it cannot form a pattern that fails or backtracks.
    query = {"appId": app["appId"], "handle": {"$regex": re.escape(text), "$options": "i"}}
    cursor = db.collection(db.INVITES).find(query).sort([("handle", 1), ("_id", 1)])
    return [invite_view(item) for item in cursor.skip((page_number - 1) * page_size).limit(page_size)]


def _positive_integer(value: Any, name: str, default: int, maximum: int | None) -> int:
    if value is None or value == "":
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,6}", text) or int(text) < 1:
        raise ApiError(errors.INVALID_DATA, f"{name} must be a positive integer")
    if maximum is not None and int(text) > maximum:
        raise ApiError(errors.INVALID_DATA, f"{name} must be at most {maximum}")
    return int(text)
