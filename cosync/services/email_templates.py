"""An app's e-mail templates and locales, as the operator manages them.

Each enabled locale has its own set of the templates in `templates.DEFAULT_TEMPLATES`.
Enabling a locale creates its set from the defaults (in English, for the operator to
translate), and disabling one deletes its set. EN is always enabled.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from bson import ObjectId
from bson.errors import InvalidId

from cosync import app_cache, audit, db, errors
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.locales import LOCALE_CODES
from cosync.queries import document_view
from cosync.services.app_settings import email_or_empty, text
from cosync.services.apps import load_app, setting
from cosync.templates import DEFAULT_LOCALE, default_template_documents
from cosync.validation import require_text

MAX_TEMPLATE_CHARS = 64 * 1024
# The reference portal's editor joins paragraphs without a line break; stored templates keep one.
_ADJACENT_PARAGRAPHS = re.compile(r"</p>\s*<p>")


def _template_locale(document: dict[str, Any]) -> str:
    # Templates written before locales existed have none; they are EN.
    return str(document.get("locale") or DEFAULT_LOCALE).upper()


def enabled_locales(app: dict[str, Any]) -> list[str]:
    """Return the app's locale codes, upper-case, EN first, without duplicates."""
    locales = [DEFAULT_LOCALE]
    for code in setting(app, "locales") or []:
        code = str(code).upper()
        if code not in locales:
            locales.append(code)
    return locales


def _templates_by_locale(app: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {code: [] for code in enabled_locales(app)}
    found = db.collection(db.EMAIL_TEMPLATES).find({"appId": app["appId"]}).sort("templateName", 1)
    for document in found:
        locale = _template_locale(document)
        if locale in grouped:
            grouped[locale].append(document_view(document))
    return grouped


def list_templates(app_id: str) -> dict[str, list[dict[str, Any]]]:
    """Return the app's templates grouped by enabled locale: `{"EN": [...], "FR": [...]}`."""
    return _templates_by_locale(load_app(app_id))


def parse_locale_codes(value: Any) -> list[str]:
    """Return locale codes from a list or a comma-separated string, upper-case, each one known."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ApiError(errors.INVALID_DATA, "locales must be a list of locale codes")
    codes = []
    for code in (item.strip().upper() for item in value):
        if code not in LOCALE_CODES:
            raise ApiError(errors.INVALID_LOCALE, f"unknown locale code {code!r}")
        if code not in codes:
            codes.append(code)
    return codes


def set_locales(app_id: str, locales: Any) -> dict[str, Any]:
    """Make `locales` (plus EN) the app's locales: create the templates of new ones and delete
    those of removed ones. Return `{appId, locales, localesTemplate}`."""
    app = load_app(app_id)
    if locales is None or locales == "":
        raise ApiError(errors.MISSING_PARAM, "field locales is missing")
    with audit.operator_action(app_id, "addRemoveLocaleEmailTemplate") as details:
        requested = parse_locale_codes(locales)
        new_locales = [DEFAULT_LOCALE] + [code for code in requested if code != DEFAULT_LOCALE]
        before = enabled_locales(app)
        added = [code for code in new_locales if code not in before]
        removed = [code for code in before if code not in new_locales]
        _create_locale_templates(app_id, added)
        _delete_locale_templates(app_id, removed)
        db.collection(db.APPS).update_one({"appId": app_id}, {"$set": {"locales": new_locales, "updatedAt": utc_now()}})
        app_cache.forget(app_id)
        details.update(added=added, removed=removed)
    app = load_app(app_id)
    return {"appId": app_id, "locales": new_locales, "localesTemplate": _templates_by_locale(app)}


def change_locales(app_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, Any]:
    """Enable the `add` locales and disable the `remove` ones, keeping the others (for the CLI)."""
    current = enabled_locales(load_app(app_id))
    dropped = set(parse_locale_codes(list(remove)))
    if DEFAULT_LOCALE in dropped:
        raise ApiError(errors.INVALID_LOCALE, "EN cannot be removed")
    new_locales = [code for code in current if code not in dropped] + parse_locale_codes(list(add))
    return set_locales(app_id, new_locales)


def _create_locale_templates(app_id: str, locales: list[str]) -> None:
    templates = db.collection(db.EMAIL_TEMPLATES)
    now = utc_now()
    for locale in locales:
        # A locale enabled before keeps the templates the operator wrote for it.
        if templates.find_one({"appId": app_id, "locale": locale}, {"_id": 1}) is None:
            templates.insert_many(default_template_documents(app_id, locale, now))


def _delete_locale_templates(app_id: str, locales: list[str]) -> None:
    if locales:
        variants = locales + [code.lower() for code in locales]
        db.collection(db.EMAIL_TEMPLATES).delete_many({"appId": app_id, "locale": {"$in": variants}})


def _find_template(app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    templates = db.collection(db.EMAIL_TEMPLATES)
    if body.get("_id") not in (None, ""):
        try:
            template_id = ObjectId(require_text(body, "_id"))
        except InvalidId:
            raise ApiError(errors.INVALID_DATA, "_id is not a template id") from None
        document = templates.find_one({"_id": template_id, "appId": app_id})
    else:
        name = require_text(body, "templateName")
        locale = str(body.get("locale") or DEFAULT_LOCALE).upper()
        locale_query: Any = locale if locale != DEFAULT_LOCALE else {"$in": [DEFAULT_LOCALE, "", None]}
        document = templates.find_one({"appId": app_id, "templateName": name, "locale": locale_query})
    if document is None:
        raise ApiError(errors.INVALID_DATA, "no such template for this app")
    return document


def _template_changes(body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "subject" in body:
        changes["subject"] = text(300, required=True)(body["subject"], "subject")
    if "replyTo" in body:
        changes["replyTo"] = email_or_empty(body["replyTo"], "replyTo")
    if "localeLinkText" in body:
        changes["localeLinkText"] = text(100, required=True)(body["localeLinkText"], "localeLinkText")
    if "htmlTemplate" in body:
        markup = body["htmlTemplate"]
        if not isinstance(markup, str) or not markup.strip() or len(markup) > MAX_TEMPLATE_CHARS:
            raise ApiError(errors.INVALID_DATA, f"htmlTemplate must be 1 to {MAX_TEMPLATE_CHARS} characters of text")
        changes["htmlTemplate"] = _ADJACENT_PARAGRAPHS.sub("</p>\n<p>", markup)
    if not changes:
        raise ApiError(errors.MISSING_PARAM, "give subject, replyTo, htmlTemplate or localeLinkText")
    return changes


def update_template(body: dict[str, Any]) -> dict[str, Any]:
    """Change one template of the app, named by `_id` or by `templateName` and `locale`."""
    app = load_app(require_text(body, "appId"))
    with audit.operator_action(app["appId"], "updateEmailTemplate") as details:
        template = _find_template(app["appId"], body)
        details.update(templateName=template.get("templateName"), locale=_template_locale(template))
        changes = _template_changes(body)
        details["fields"] = sorted(changes)
        db.collection(db.EMAIL_TEMPLATES).update_one(
            {"_id": template["_id"]}, {"$set": {**changes, "updatedAt": utc_now()}}
        )
        app_cache.forget(app["appId"])
    return document_view(db.collection(db.EMAIL_TEMPLATES).find_one({"_id": template["_id"]}))


def patch_app_locales() -> bool:
    """Repair locale data that older CosyncJWT versions left; repeating it changes nothing.

    Templates without a locale become EN, apps without locales (or with only "en") get ["EN"],
    and every app gets the EN templates it is missing, from the defaults.
    """
    app_cache.forget()
    templates = db.collection(db.EMAIL_TEMPLATES)
    templates.update_many({"$or": [{"locale": None}, {"locale": ""}]}, {"$set": {"locale": DEFAULT_LOCALE}})
    apps = db.collection(db.APPS)
    apps.update_many(
        {"$or": [{"locales": None}, {"locales": {"$size": 0}}, {"locales": ["en"]}]},
        {"$set": {"locales": [DEFAULT_LOCALE]}},
    )
    for app in apps.find({}, {"appId": 1}):
        present = {document.get("templateName") for document in templates.find({"appId": app["appId"], "locale": DEFAULT_LOCALE})}
        missing = [
            document for document in default_template_documents(app["appId"], DEFAULT_LOCALE, utc_now())
            if document["templateName"] not in present
        ]
        if missing:
            templates.insert_many(missing)
            audit.record_operator(app["appId"], "patchAppLocales", added=[document["templateName"] for document in missing])
    return True
