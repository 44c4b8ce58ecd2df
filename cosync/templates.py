"""E-mail templates: the default set, lookup per app and locale, and rendering.

Template names and the placeholders `%HANDLE%`, `%CODE%`, `%APP_NAME%` and `%LINK%` are
those of CosyncJWT, so templates in an existing database keep working. Unlike the reference
server, values are HTML-escaped before they are put into an HTML body.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from cosync import app_cache, db

SIGN_UP = "signUp"
SIGN_UP_LINK = "signUpLink"
CLICK_THROUGH = "clickThrough"
RESET_PASSWORD = "resetPassword"
INVITE = "invite"
QR_CODE = "qrCode"
SMS = "sms"
SIGN_UP_SUCCESS = "signUpSuccess"

DEFAULT_LOCALE = "EN"


@dataclass(frozen=True)
class Template:
    name: str
    subject: str
    html: str
    reply_to: str = ""
    link_text: str = "LINK"


def _closing(app_placeholder: str = "%APP_NAME%") -> str:
    return f"<p>Thank you,</p>\n<p>The {app_placeholder} team</p>"


DEFAULT_TEMPLATES: dict[str, Template] = {
    SIGN_UP: Template(
        SIGN_UP,
        "Confirm your e-mail address for %APP_NAME%",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>Enter this code in %APP_NAME% to confirm your e-mail address:</p>\n"
        "<p><strong>%CODE%</strong></p>\n"
        "<p>If you did not create an account, you can ignore this message.</p>\n" + _closing(),
    ),
    SIGN_UP_LINK: Template(
        SIGN_UP_LINK,
        "Confirm your account for %APP_NAME%",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>Open this link to confirm your account: <strong>%LINK%</strong></p>\n"
        "<p>If you did not create an account, you can ignore this message.</p>\n" + _closing(),
        link_text="Confirm my account",
    ),
    CLICK_THROUGH: Template(
        CLICK_THROUGH,
        "clickThrough",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>Your account is confirmed.</p>\n"
        "<p><strong>You can now log in to %APP_NAME%.</strong></p>\n" + _closing(),
    ),
    RESET_PASSWORD: Template(
        RESET_PASSWORD,
        "Reset your %APP_NAME% password",
        "<p>Hello,</p>\n"
        "<p>Use this code to choose a new password for the account %HANDLE%:</p>\n"
        "<p><strong>%CODE%</strong></p>\n"
        "<p>If you did not ask for a new password, you can ignore this message; "
        "your password stays as it is.</p>\n" + _closing(),
    ),
    INVITE: Template(
        INVITE,
        "You are invited to %APP_NAME%",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>You have been invited to join %APP_NAME%. Register with this invitation code:</p>\n"
        "<p><strong>%CODE%</strong></p>\n"
        "<p>If you do not know the sender, you can ignore this message.</p>\n" + _closing(),
    ),
    QR_CODE: Template(
        QR_CODE,
        "Your two-step login key for %APP_NAME%",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>Two-step login is now on for your account. Scan the attached QR code with your "
        "authenticator app, or type in this key:</p>\n"
        "<p><strong>%CODE%</strong></p>\n"
        "<p>If you did not turn on two-step login, change your password now.</p>\n" + _closing(),
    ),
    SMS: Template(SMS, "Your %APP_NAME% verification code", "%CODE% is your %APP_NAME% verification code."),
    SIGN_UP_SUCCESS: Template(
        SIGN_UP_SUCCESS,
        "Welcome to %APP_NAME%",
        "<p>Hello %HANDLE%,</p>\n"
        "<p>Your %APP_NAME% account is ready.</p>\n"
        "<p>If you did not create this account, please let us know by replying to this message.</p>\n"
        + _closing(),
    ),
}


def default_template_documents(app_id: str, locale: str, now: Any) -> list[dict[str, Any]]:
    """Return the default template set as `emailtemplates` documents for one locale."""
    documents = []
    for template in DEFAULT_TEMPLATES.values():
        document = {
            "appId": app_id,
            "templateName": template.name,
            "subject": template.subject,
            "replyTo": template.reply_to,
            "htmlTemplate": template.html,
            "locale": locale,
            "createdAt": now,
            "updatedAt": now,
        }
        if template.name == SIGN_UP_LINK:
            document["localeLinkText"] = template.link_text
        documents.append(document)
    return documents


def find_template(database: Database, app_id: str, name: str, locale: str | None) -> Template:
    """Return the app's template in `locale`, else in EN, else the built-in default.

    The result is cached with the app document (see `cosync.app_cache`).
    """
    requested = (locale or DEFAULT_LOCALE).upper()
    return app_cache.cached(app_id, ("template", name, requested), lambda: _read_template(database, app_id, name, requested))


def _read_template(database: Database, app_id: str, name: str, requested: str) -> Template:
    locales = [requested] if requested == DEFAULT_LOCALE else [requested, DEFAULT_LOCALE]
    documents = database[db.EMAIL_TEMPLATES].find(
        {"appId": app_id, "templateName": name, "locale": {"$in": locales}}
    )
    by_locale = {document.get("locale"): document for document in documents}
    for code in locales:
        document = by_locale.get(code)
        if document and isinstance(document.get("htmlTemplate"), str) and document["htmlTemplate"]:
            return Template(
                name=name,
                subject=str(document.get("subject") or DEFAULT_TEMPLATES[name].subject),
                html=document["htmlTemplate"],
                reply_to=str(document.get("replyTo") or ""),
                link_text=str(document.get("localeLinkText") or DEFAULT_TEMPLATES[name].link_text),
            )
    return DEFAULT_TEMPLATES[name]


_PLACEHOLDER = re.compile(r"%(HANDLE|CODE|APP_NAME|LINK)%")


def render(text: str, values: dict[str, str], escape: bool, raw: frozenset[str] = frozenset()) -> str:
    """Replace every placeholder in `text` with its value, HTML-escaped when `escape` is set.

    Names in `raw` are inserted unescaped (the `%LINK%` anchor that we build ourselves).
    Placeholders without a value are left as they are.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return value if (not escape or name in raw) else html.escape(value, quote=True)

    return _PLACEHOLDER.sub(substitute, text)


def html_to_text(markup: str) -> str:
    """Turn a template body into a plain-text alternative; a link keeps its address."""
    text = re.sub(r'<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2: \1", markup, flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<br\s*/?>|</p>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [html.unescape(line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)
