"""E-mail delivery: SendGrid in production, a local outbox folder without an API key.

`send_email` posts the message to SendGrid's v3 `POST /v3/mail/send` when it is given an API
key. Without one (local development, tests) it writes the message to the outbox folder
`OUTBOX_DIR` (default `.data/outbox`) so that every flow can be followed by hand.

Outbox layout: one JSON file per message, named `<UTC time>Z-<uuid>.json` (for example
`20261204T201500.123456Z-0b6f....json`), so the names sort by time and never collide. The JSON
object has the keys `created_at`, `to`, `subject`, `sender`, `sender_name`, `reply_to`, `text`,
`html` and `attachments`. Each attachment is listed as `{"filename", "mime_type", "size",
"path"}` and its bytes are written beside the JSON file, in a folder named like the JSON file
without `.json`, as `<index>-<filename>`. `path` is that file's location relative to the outbox
folder. The JSON file is written last and renamed into place, so a reader never sees a message
whose attachments are missing or whose JSON is half written.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

from cosync.settings import get_settings, is_encrypted_or_local

log = logging.getLogger(__name__)

# python_http_client (used by the sendgrid package) logs the request headers, which contain the
# API key, and the full request body at DEBUG level. Keep that logger above DEBUG even when the
# application turns on debug logging.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)

# python_http_client defaults to no timeout, so a stalled connection would otherwise hold the
# function invocation until the Functions host ends it.
SENDGRID_TIMEOUT_SECONDS = 10.0
# Longest SendGrid error text copied into a MailError message.
MAX_REASON_CHARS = 300
# A 64-character local part, "@" and a 255-character domain (RFC 5321 section 4.5.3.1).
MAX_ADDRESS_CHARS = 320

_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    html: str  # already rendered and escaped by the caller
    text: str  # plain-text alternative
    sender: str  # from address
    sender_name: str | None = None
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """The outcome of a sent message: `provider` ("sendgrid" or "outbox"), SendGrid's HTTP
    `status`, and `message_id` (SendGrid's `X-Message-Id`, or the outbox file name)."""

    provider: str
    status: int | None
    message_id: str | None


class MailError(Exception):
    """Delivery of an e-mail failed. The message states why and never contains the API key.

    `status` is SendGrid's HTTP status when SendGrid responded, else None. `provider_error` is the
    first entry of SendGrid's `errors` list (`{"message", "field", "help"}`) when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.provider_error = provider_error


def send_email(message: EmailMessage, api_key: str | None) -> Delivery:
    """SendGrid when api_key is set, else the local outbox. Raises MailError on failure."""
    _validate(message)
    if api_key:
        return _send_with_sendgrid(message, api_key)
    path = _write_to_outbox(message, get_settings().outbox_dir)
    return Delivery(provider="outbox", status=None, message_id=path.name)


def read_outbox(directory: Path | None = None) -> list[dict[str, Any]]:
    """Read the messages stored in the outbox, oldest first.

    `directory` defaults to the `OUTBOX_DIR` setting. A folder that does not exist yet is an
    empty outbox.
    """
    if directory is None:
        directory = get_settings().outbox_dir
    if not directory.is_dir():
        return []

    paths = sorted(path for path in directory.glob("*.json") if path.is_file())
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _validate(message: EmailMessage) -> None:
    _check_address("recipient", message.to)
    _check_address("sender", message.sender)
    if message.reply_to is not None:
        _check_address("reply-to", message.reply_to)

    # SendGrid carries these in JSON, but a line break would still end up in a mail header.
    for field, value in (("subject", message.subject), ("sender name", message.sender_name)):
        if value is not None and ("\r" in value or "\n" in value):
            raise MailError(f"invalid {field}: it must not contain a line break")

    if not message.html and not message.text:
        raise MailError("invalid message: both the HTML and the text body are empty")


def _check_address(field: str, address: str) -> None:
    # This loose check stops values that cannot be an address or that would break a mail header,
    # and SendGrid validates the rest. The address itself stays out of the error message.
    local_part, at, domain = address.rpartition("@")
    if (
        not at
        or not local_part
        or not domain
        or len(address) > MAX_ADDRESS_CHARS
        or any(character.isspace() or ord(character) < 32 for character in address)
    ):
        raise MailError(f"invalid {field} address: expected one address of the form name@domain")


def _recipient_domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _send_with_sendgrid(message: EmailMessage, api_key: str) -> Delivery:
    # Imported here because most invocations send no mail and cold starts should not pay for it.
    from python_http_client.exceptions import HTTPError
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail.exceptions import SendGridException

    host = _sendgrid_host()
    try:
        request_body = _build_sendgrid_mail(message).get()
    except SendGridException as error:
        # The sendgrid package rejects a body whose text starts like a SendGrid API key.
        raise MailError(
            f"message not sent: the sendgrid package raised {type(error).__name__}"
        ) from None

    client = SendGridAPIClient(api_key, host=host)
    client.client.timeout = SENDGRID_TIMEOUT_SECONDS
    domain = _recipient_domain(message.to)
    try:
        response = client.send(request_body)
    except HTTPError as error:
        failure = _rejection_error(error, api_key)
        log.warning("SendGrid did not send an e-mail to a recipient at %s: %s", domain, failure)
        raise failure from None
    except (OSError, HTTPException) as error:
        # URLError (connection refused, DNS failure) and socket timeouts are OSErrors.
        # URLError keeps the underlying socket error in `reason`.
        reason = _redact(str(getattr(error, "reason", None) or error), api_key)
        reason = reason or type(error).__name__
        log.warning("SendGrid at %s could not be reached: %s", host, reason)
        raise MailError(f"SendGrid at {host} could not be reached: {reason}") from None

    if not 200 <= response.status_code < 300:
        status = response.status_code
        log.warning("SendGrid returned HTTP %d for an e-mail to a recipient at %s", status, domain)
        raise MailError(f"SendGrid did not send the message: HTTP {status}", status=status)

    message_id = response.headers.get("X-Message-Id") if response.headers else None
    log.info(
        "sent e-mail through SendGrid to a recipient at %s (HTTP %d, message id %s)",
        domain,
        response.status_code,
        message_id or "not given",
    )
    return Delivery(provider="sendgrid", status=response.status_code, message_id=message_id)


def _sendgrid_host() -> str:
    """Return the configured SendGrid base URL after checking that the key travels encrypted."""
    host = get_settings().sendgrid_api_host.rstrip("/")
    if is_encrypted_or_local(host):
        return host
    raise MailError(
        f"invalid SENDGRID_API_HOST {host!r}: use an https:// URL "
        "(plain http is accepted only for 127.0.0.1 and localhost)"
    )


def _build_sendgrid_mail(message: EmailMessage) -> Any:
    from sendgrid.helpers.mail import Attachment as SendGridAttachment
    from sendgrid.helpers.mail import (
        Disposition,
        FileContent,
        FileName,
        FileType,
        From,
        Mail,
        ReplyTo,
        To,
    )

    # SendGrid rejects a content entry whose value is empty, so an empty body is left out.
    mail = Mail(
        from_email=From(message.sender, message.sender_name),
        to_emails=To(message.to),
        subject=message.subject,
        plain_text_content=message.text or None,
        html_content=message.html or None,
    )
    if message.reply_to is not None:
        mail.reply_to = ReplyTo(message.reply_to)
    # Mail.add_attachment in sendgrid 6.x inserts at the front of the list, so adding in reverse
    # keeps the caller's order.
    for attachment in reversed(message.attachments):
        mail.add_attachment(
            SendGridAttachment(
                FileContent(base64.b64encode(attachment.content).decode("ascii")),
                FileName(attachment.filename),
                FileType(attachment.mime_type),
                Disposition("attachment"),
            )
        )
    return mail


def _rejection_error(error: Any, api_key: str) -> MailError:
    """Turn a python_http_client HTTPError into a MailError with SendGrid's first reason."""
    status = int(error.status_code)
    provider_error = _first_sendgrid_error(error.body)
    if provider_error is not None and provider_error.get("message"):
        reason = str(provider_error["message"])
    else:
        reason = str(error.reason or "no reason given")
    reason = _redact(reason, api_key)[:MAX_REASON_CHARS]
    if provider_error is not None:
        provider_error = json.loads(_redact(json.dumps(provider_error), api_key))
    return MailError(
        f"SendGrid rejected the message: HTTP {status}: {reason}",
        status=status,
        provider_error=provider_error,
    )


def _first_sendgrid_error(body: Any) -> dict[str, Any] | None:
    # SendGrid returns errors as {"errors": [{"message": ..., "field": ..., "help": ...}]}.
    try:
        document = json.loads(body)
    except (TypeError, ValueError):
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return None


def _redact(text: str, api_key: str) -> str:
    return text.replace(api_key, "[redacted]")


class _OutboxClock:
    """UTC timestamps that strictly increase within the process, so outbox names keep the order
    of sending even when the system clock is coarse or steps back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

    def now(self) -> datetime.datetime:
        with self.lock:
            current = datetime.datetime.now(datetime.timezone.utc)
            if current <= self.last:
                current = self.last + datetime.timedelta(microseconds=1)
            self.last = current
            return current


_outbox_clock = _OutboxClock()


def _write_to_outbox(message: EmailMessage, directory: Path) -> Path:
    created_at = _outbox_clock.now()
    stem = f"{created_at:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4()}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        attachments = _write_outbox_attachments(message.attachments, directory, stem)
        document = {
            "created_at": created_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "to": message.to,
            "subject": message.subject,
            "sender": message.sender,
            "sender_name": message.sender_name,
            "reply_to": message.reply_to,
            "text": message.text,
            "html": message.html,
            "attachments": attachments,
        }
        path = directory / f"{stem}.json"
        partial = directory / f".{stem}.json.partial"
        partial.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        raise MailError(f"could not write the message to the outbox {directory}: {error}") from None

    log.info("no SendGrid API key configured: wrote e-mail to outbox file %s", path)
    return path


def _write_outbox_attachments(
    attachments: tuple[Attachment, ...], directory: Path, stem: str
) -> list[dict[str, Any]]:
    if not attachments:
        return []

    folder = directory / stem
    folder.mkdir(mode=0o700)
    listed = []
    for index, attachment in enumerate(attachments, start=1):
        # The file name comes from the caller; keep only its last part and safe characters.
        safe_name = _UNSAFE_FILENAME_CHARACTERS.sub("_", Path(attachment.filename).name)
        path = folder / f"{index}-{safe_name or 'attachment'}"
        path.write_bytes(attachment.content)
        listed.append(
            {
                "filename": attachment.filename,
                "mime_type": attachment.mime_type,
                "size": len(attachment.content),
                "path": path.relative_to(directory).as_posix(),
            }
        )
    return listed
