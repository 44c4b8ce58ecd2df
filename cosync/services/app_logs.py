"""Reading an app's audit log and its usage figures (`logs` and `stat`)."""

from __future__ import annotations

import datetime
import re
from typing import Any

from cosync import audit, db, errors
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.queries import document_view, parse_time
from cosync.search import PageRequest, find_page, parse_page
from cosync.services.app_settings import whole_number
from cosync.services.apps import load_app
from cosync.validation import require_text

ACTION_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_ACTIONS = 50
# Audit actions that end in a session: `login` without a second factor, `loginComplete` after
# one, `socialLogin` and `loginAnonymous`. A `login` record whose value names a `secondFactor`
# only started a login.
LOGIN_ACTIONS = ("login", "loginComplete", "socialLogin", "loginAnonymous")
DEFAULT_LOGIN_DAYS = 30
MAX_LOGIN_DAYS = 366
# Never shown in a stat page: password hashes, codes, TOTP seeds and the revocation counter.
HIDDEN_USER_FIELDS = frozenset({"password", "googleSecretKey", "twoFactorCode", "phoneCode", "tokenVersion"})
HIDDEN_SIGNUP_FIELDS = frozenset({"password", "code"})
HIDDEN_INVITE_FIELDS = frozenset({"code"})
ANONYMOUS_HANDLE = {"$regex": "^ANON_"}
NEWEST_FIRST = [("createdAt", -1), ("_id", -1)]


def _choice_or_all(value: Any, name: str, allowed: tuple[str, ...]) -> str | None:
    if value in (None, "", "all"):
        return None
    if value not in allowed:
        raise ApiError(errors.INVALID_DATA, f"{name} must be all or one of {', '.join(allowed)}")
    return value


def _actions(value: Any) -> list[str] | None:
    if value in (None, "", "all"):
        return None
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, "filterAction must be a comma-separated list of actions")
    actions = [part.strip() for part in value.split(",") if part.strip()]
    if len(actions) > MAX_ACTIONS or not all(ACTION_PATTERN.fullmatch(action) for action in actions):
        raise ApiError(errors.INVALID_DATA, f"filterAction must list at most {MAX_ACTIONS} action names")
    return actions or None


def log_query(app_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Build the `applogs` filter from the `type`, `status`, `filterAction`, `fromDate` and
    `toDate` parameters; `fromDate` is inclusive and `toDate` exclusive."""
    query: dict[str, Any] = {"appId": app_id}
    log_type = _choice_or_all(params.get("type"), "type", ("app", "user"))
    if log_type:
        query["logType"] = log_type
    status = _choice_or_all(params.get("status"), "status", ("success", "error"))
    if status:
        query["status"] = status
    actions = _actions(params.get("filterAction"))
    if actions:
        query["action"] = {"$in": actions}
    period: dict[str, datetime.datetime] = {}
    start = parse_time(params.get("fromDate"), "fromDate")
    end = parse_time(params.get("toDate"), "toDate")
    if start:
        period["$gte"] = start
    if end:
        period["$lt"] = end
    if period:
        query["createdAt"] = period
    return query


def list_logs(params: dict[str, Any]) -> dict[str, Any]:
    """Return one page of the app's audit records, newest first, and how many match in all."""
    app = load_app(require_text(params, "appId"))
    page = parse_page(params)
    query = log_query(app["appId"], params)
    # Records of requests that this worker served are readable here at once. Those of other
    # workers follow within milliseconds.
    audit.flush()
    found = find_page(db.collection(db.APP_LOGS), query, NEWEST_FIRST, page)
    return {"totalLog": found.total, "logs": [document_view(record) for record in found.items]}


def _page_of(name: str, query: dict[str, Any], page: PageRequest, hidden: frozenset[str]) -> list[dict[str, Any]]:
    found = db.collection(name).find(query).sort(NEWEST_FIRST).skip(page.number * page.size).limit(page.size)
    return [document_view(document, hidden) for document in found]


def _user_figures(app_id: str, page: PageRequest, hide_anonymous: bool) -> dict[str, Any]:
    query: dict[str, Any] = {"appId": app_id}
    if hide_anonymous:
        query["handle"] = {"$not": ANONYMOUS_HANDLE}
    users = db.collection(db.USERS)
    return {
        "users": _page_of(db.USERS, query, page, HIDDEN_USER_FIELDS),
        "totalUser": users.count_documents(query),
        "totalAnonUser": users.count_documents({"appId": app_id, "handle": ANONYMOUS_HANDLE}),
    }


def _invite_figures(app_id: str, page: PageRequest) -> dict[str, Any]:
    invites = db.collection(db.INVITES)
    return {
        "invites": _page_of(db.INVITES, {"appId": app_id}, page, HIDDEN_INVITE_FIELDS),
        "totalInvite": invites.count_documents({"appId": app_id}),
        "pendingInvites": invites.count_documents({"appId": app_id, "status": "pending"}),
    }


def _signup_figures(app_id: str, page: PageRequest, now: datetime.datetime) -> dict[str, Any]:
    signups = db.collection(db.SIGNUPS)
    # Sign-ups written by CosyncJWT carry no expiry.
    live = {"appId": app_id, "status": "pending", "$or": [{"expiresAt": {"$gt": now}}, {"expiresAt": None}]}
    return {
        "signups": _page_of(db.SIGNUPS, {"appId": app_id}, page, HIDDEN_SIGNUP_FIELDS),
        "totalSignup": signups.count_documents({"appId": app_id}),
        "pendingSignups": signups.count_documents(live),
    }


def logins_per_day(app_id: str, days: int, now: datetime.datetime) -> list[dict[str, Any]]:
    """Count successful logins per UTC day over the last `days` days (today included), oldest
    first. The counts come from the audit log, so days before the log retention show 0."""
    first_day = now.date() - datetime.timedelta(days=days - 1)
    start = datetime.datetime.combine(first_day, datetime.time(), tzinfo=datetime.timezone.utc)
    counts = {first_day + datetime.timedelta(days=offset): 0 for offset in range(days)}
    audit.flush()
    # NOTE: this reads one small document per login in the period; an app with millions of
    # logins a month would want a per-day counter instead.
    records = db.collection(db.APP_LOGS).find(
        {"appId": app_id, "action": {"$in": list(LOGIN_ACTIONS)}, "status": "success", "createdAt": {"$gte": start}},
        {"createdAt": 1, "action": 1, "value": 1, "_id": 0},
    )
    for record in records:
        if record["action"] == "login" and '"secondFactor"' in str(record.get("value") or ""):
            continue
        day = record["createdAt"].astimezone(datetime.timezone.utc).date()
        if day in counts:
            counts[day] += 1
    return [{"date": day.isoformat(), "logins": count} for day, count in counts.items()]


TARGETS = ("users", "invites", "signups", "logins")


def app_stats(params: dict[str, Any]) -> dict[str, Any]:
    """Return the app's users, invites and sign-ups (one page each, newest first, with totals)
    and its logins per day; `target` limits the result to one of them."""
    app = load_app(require_text(params, "appId"))
    app_id = app["appId"]
    page = parse_page(params)
    target = _choice_or_all(params.get("target"), "target", TARGETS)
    days = DEFAULT_LOGIN_DAYS
    if params.get("days") not in (None, ""):
        days = whole_number(1, MAX_LOGIN_DAYS)(params["days"], "days")
    now = utc_now()
    result: dict[str, Any] = {}
    if target in (None, "users"):
        result.update(_user_figures(app_id, page, params.get("hideAnonUser") in (True, "true")))
    if target in (None, "invites"):
        result.update(_invite_figures(app_id, page))
    if target in (None, "signups"):
        result.update(_signup_figures(app_id, page, now))
    if target in (None, "logins"):
        result["loginsPerDay"] = logins_per_day(app_id, days, now)
    return result
