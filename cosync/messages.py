"""Sending an app's templated e-mails through the right account."""

from __future__ import annotations

import logging
from typing import Any

from cosync import db, templates
from cosync.crypto import decrypt_field
from cosync.mail import Attachment, EmailMessage, MailError, send_email
from cosync.secrets import SENDGRID_API_KEY, get_secrets
from cosync.settings import get_settings

log = logging.getLogger(__name__)


def _api_key_and_sender(app: dict[str, Any], template: templates.Template) -> tuple[str | None, str]:
    secrets = get_secrets()
    settings = get_settings()
    if app.get("emailExtension") and app.get("emailExtensionAPIKey"):
        api_key = decrypt_field(
            secrets.encryption_key, app["emailExtensionAPIKey"], f"apps.emailExtensionAPIKey:{app['appId']}"
        )
        return api_key, template.reply_to or app.get("emailExtensionSenderEmail") or settings.noreply_email
    return secrets.sendgrid_api_key, template.reply_to or settings.noreply_email


def send_template(
    app: dict[str, Any],
    template_name: str,
    to: str,
    locale: str | None,
    values: dict[str, str],
    raw: frozenset[str] = frozenset(),
    attachments: tuple[Attachment, ...] = (),
) -> None:
    """Render the app's template for `locale` and send it to `to`; raise MailError on failure.

    `values` are the placeholder values; names in `raw` are trusted HTML inserted unescaped.
    """
    template = templates.find_template(db.get_database(), app["appId"], template_name, locale)
    values = {"APP_NAME": str(app.get("name", "")), **values}
    body = templates.render(template.html, values, escape=True, raw=raw)
    subject = templates.render(template.subject, {"APP_NAME": values["APP_NAME"]}, escape=False)
    api_key, sender = _api_key_and_sender(app, template)
    if api_key is None and get_settings().key_vault_url:
        # The outbox is for development; in Azure the instance's disk is neither durable nor a
        # place for sign-up codes.
        raise MailError(f"no SendGrid API key: store secret {SENDGRID_API_KEY!r} in the Key Vault")
    send_email(
        EmailMessage(
            to=to,
            subject=subject,
            html=body,
            text=templates.html_to_text(body),
            sender=sender,
            sender_name=str(app.get("name") or get_settings().server_name),
            reply_to=template.reply_to or None,
            attachments=attachments,
        ),
        api_key,
    )


def send_template_or_log(app: dict[str, Any], template_name: str, to: str, locale: str | None, values: dict[str, str]) -> bool:
    """Send like `send_template`, but log a failure instead of raising it (for courtesy mail)."""
    try:
        send_template(app, template_name, to, locale, values)
    except MailError as error:
        log.warning("could not send %s mail for app %s: %s", template_name, app["appId"], error)
        return False
    return True
