"""Deleting an app with all its data, and resetting an app to a fresh start."""

from __future__ import annotations

from typing import Any

from cosync import app_cache, audit, db
from cosync.dates import utc_now
from cosync.locales import LOCALE_CODES
from cosync.services.apps import load_app, setting
from cosync.templates import DEFAULT_LOCALE, default_template_documents

# The per-app records of end users: accounts, pending sign-ups and their codes, invites,
# password resets, SMS codes and user-name claims.
USER_DATA = (db.USERS, db.SIGNUPS, db.SIGNUP_CODES, db.INVITES, db.RESET_PASSWORDS, db.SMS_CODES, db.USER_NAMES)
# Everything stored under an app id besides the app document.
APP_DATA = USER_DATA + (db.EMAIL_TEMPLATES, db.APP_LOGS)


def _delete_records(app_id: str, collections: tuple[str, ...]) -> dict[str, int]:
    return {name: db.collection(name).delete_many({"appId": app_id}).deleted_count for name in collections}


def delete_app(app_id: str) -> bool:
    """Delete the app and every record stored under its id; raise APP_NOT_FOUND if there is none.

    The records go first, so a failure part-way can be repeated. A second pass after the app
    document is gone removes what a request in flight wrote meanwhile, including this worker's
    queued audit records. Audit records that other workers write later stay until the log
    retention ends, like the record of the deletion itself.
    """
    load_app(app_id)
    audit.flush()
    removed = _delete_records(app_id, APP_DATA)
    db.collection(db.APPS).delete_one({"appId": app_id})
    app_cache.forget(app_id)
    audit.flush()
    _delete_records(app_id, APP_DATA)
    audit.record_operator(app_id, "deleteApp", removed={name: count for name, count in removed.items() if count})
    return True


def reset_app(app_id: str) -> bool:
    """Delete the app's users, sign-ups, invites, password resets, SMS codes and user names, and
    restore the default e-mail templates of each enabled locale. The app keeps its settings,
    keys, tokens and logs.
    """
    app = load_app(app_id)
    removed = _delete_records(app_id, USER_DATA)
    templates = db.collection(db.EMAIL_TEMPLATES)
    templates.delete_many({"appId": app_id})
    now = utc_now()
    for locale in _enabled_locales(app):
        templates.insert_many(default_template_documents(app_id, locale, now))
    app_cache.forget(app_id)
    audit.record_operator(app_id, "resetApp", removed=removed)
    return True


def _enabled_locales(app: dict[str, Any]) -> list[str]:
    locales = [DEFAULT_LOCALE]
    for code in setting(app, "locales"):
        code = str(code).upper()
        if code in LOCALE_CODES and code not in locales:
            locales.append(code)
    return locales
