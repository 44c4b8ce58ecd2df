"""`testEmailExtension`: one real message through the app's own SendGrid account."""

from __future__ import annotations

import html
from typing import Any

from cosync import audit, errors
from cosync.crypto import decrypt_field
from cosync.errors import ApiError
from cosync.mail import EmailMessage, MailError, send_email
from cosync.secrets import get_secrets
from cosync.services.app_settings import email_or_empty
from cosync.services.apps import load_app
from cosync.settings import get_settings
from cosync.validation import require_text


def _api_key(app: dict[str, Any]) -> str | None:
    stored = app.get("emailExtensionAPIKey")
    if not stored:
        return None
    return decrypt_field(get_secrets().encryption_key, stored, f"apps.emailExtensionAPIKey:{app['appId']}")


def _test_message(app: dict[str, Any], sender: str, to: str) -> EmailMessage:
    name = str(app.get("name") or "")
    body = (
        f"<p>This is a test message from the {html.escape(name)} app.</p>\n"
        "<p>It was sent through the SendGrid account configured as the app's e-mail extension, "
        "so that account can deliver the app's mail.</p>"
    )
    text = (
        f"This is a test message from the {name} app.\n"
        "It was sent through the SendGrid account configured as the app's e-mail extension, "
        "so that account can deliver the app's mail."
    )
    return EmailMessage(
        to=to, subject=f"{name}: e-mail extension test", html=body, text=text, sender=sender, sender_name=name
    )


def send_test_email(body: dict[str, Any]) -> dict[str, Any]:
    """Send a test message with the app's SendGrid key, or to the outbox when it has none.

    The recipient is `to`, else the extension's sender address. Returns the provider's response:
    `{"sent", "provider", "status", "messageId"}`, and on failure also `code`, `message` and
    `providerError` (SendGrid's first error object).
    """
    app = load_app(require_text(body, "appId"))
    with audit.operator_action(app["appId"], "testExtensionService") as details:
        api_key = _api_key(app)
        if api_key is None and get_settings().key_vault_url:
            raise ApiError(errors.INVALID_DATA, "app has no SendGrid key: set it with setting emailExtensionAPIKey")
        sender = app.get("emailExtensionSenderEmail") or (None if api_key else get_settings().noreply_email)
        if not sender:
            raise ApiError(errors.MISSING_PARAM, "app has no sender address: set emailExtensionSenderEmail")
        to = email_or_empty(body.get("to") or "", "to") or sender
        details["provider"] = "sendgrid" if api_key else "outbox"
        report = _send(_test_message(app, sender, to), api_key)
        details["providerStatus"] = report["status"]
        if not report["sent"]:
            raise EmailNotSent(report)
    return report


class EmailNotSent(ApiError):
    """The provider did not take the test message: HTTP 502 with the error and its report."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(errors.EMAIL_NOT_SENT, report.get("reason") or "", status=502)
        self.report = report

    def body(self) -> dict[str, object]:
        return {**super().body(), **self.report}


def _send(message: EmailMessage, api_key: str | None) -> dict[str, Any]:
    provider = "sendgrid" if api_key else "outbox"
    try:
        delivery = send_email(message, api_key)
    except MailError as error:
        return {
            "sent": False,
            "provider": provider,
            "status": error.status,
            "reason": str(error),
            "providerError": error.provider_error,
        }
    return {"sent": True, "provider": delivery.provider, "status": delivery.status, "messageId": delivery.message_id}
