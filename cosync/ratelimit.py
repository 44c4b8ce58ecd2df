"""Rate limits: at most N events per subject in a fixed time window, counted in MongoDB.

Serverless workers share no memory, so the counts live in the `counters` collection, where
they stay exact under parallel requests (see `cosync.counters`).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from cosync import counters, errors
from cosync.dates import utc_now
from cosync.errors import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    events: int
    window: datetime.timedelta


# Sign-up code e-mails per (app, handle): bounds the codes an attacker can have sent to one
# address, and with them the guesses at a pending sign-up.
SIGNUP_MAILS_PER_HANDLE = Limit("signup-mail", 5, datetime.timedelta(hours=24))

# The limits below are per (app, handle) or per client address. The per-handle ones bound the
# guesses at one account; the per-address ones bound one client's traffic across accounts and
# stay high enough for users behind one NAT. Subjects: f"{app_id}:{handle}" and
# f"{app_id}:{call.client_address}".
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
LOGIN_PER_HANDLE = Limit("login-handle", 10, 15 * MINUTE)
LOGIN_PER_ADDRESS = Limit("login-address", 100, 15 * MINUTE)
CODE_CHECKS_PER_ADDRESS = Limit("code-address", 60, HOUR)
FORGOT_PASSWORD_PER_HANDLE = Limit("forgot-handle", 5, HOUR)
FORGOT_PASSWORD_PER_ADDRESS = Limit("forgot-address", 30, HOUR)
SIGNUP_PER_ADDRESS = Limit("signup-address", 30, HOUR)
SMS_PER_USER = Limit("sms-user", 5, HOUR)
SMS_PER_ADDRESS = Limit("sms-address", 30, HOUR)
# Second-factor codes checked per (app, handle), across login tokens: a caller who knows the
# password cannot get unlimited TOTP guesses by logging in again and again.
TWO_FACTOR_CHECKS_PER_USER = Limit("two-factor-user", 10, HOUR)
# New anonymous accounts per client address, and invitation mails per inviting user: both
# create data or send mail on behalf of callers who proved nothing but an app token or a login.
ANONYMOUS_ACCOUNTS_PER_ADDRESS = Limit("anonymous-address", 30, HOUR)
INVITE_MAILS_PER_USER = Limit("invite-user", 20, 24 * HOUR)


def hit(limit: Limit, subject: str) -> None:
    """Count one event for `subject`; raise a rate-limit ApiError when the window is full.

    The error is HTTP 429 with the contract body of code 500: the SDKs have no code for rate
    limits and treat both as an internal error, while plain HTTP clients see 429 and
    `Retry-After`.
    """
    hit_many([(limit, subject)])


def hit_many(events: list[tuple[Limit, str]]) -> list[str]:
    """Count one event for each (limit, subject), with one database command in the usual case;
    return the counter slots taken, which `counters.release` gives back.

    When any window is full, the events counted by this call are given back and the
    rate-limit ApiError of `hit` is raised for the first full one, so a rejected request
    counts nowhere.
    """
    now = utc_now()
    windows = [_window(limit, now) for limit, _ in events]
    claims = [
        (f"{limit.name}:{subject}:{window_start}", limit.events, window_end)
        for (limit, subject), (window_start, window_end) in zip(events, windows)
    ]
    slot_ids = counters.claim_many(claims)
    taken = [slot_id for slot_id in slot_ids if slot_id is not None]
    for (limit, subject), (_, window_end), slot_id in zip(events, windows, slot_ids):
        if slot_id is not None:
            continue
        counters.release(taken)
        retry_after = max(1, int((window_end - now).total_seconds()))
        log.warning("rate limit %s reached for %s; retry in %d s", limit.name, subject, retry_after)
        raise ApiError(
            errors.INTERNAL_SERVER_ERROR,
            f"rate limit {limit.name} reached",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    return taken


def _window(limit: Limit, now: datetime.datetime) -> tuple[int, datetime.datetime]:
    """Return the start (seconds since the epoch) and the end of the fixed window holding `now`."""
    seconds = int(limit.window.total_seconds())
    window_start = int(now.timestamp()) // seconds * seconds
    return window_start, datetime.datetime.fromtimestamp(window_start + seconds, datetime.timezone.utc)
