"""SMS delivery: the app's own Twilio account, or a local outbox when the app has none.

An app's Twilio account SID, auth token and sender number are stored encrypted in
`apps.TWILIOAccountSid`, `apps.TWILIOToken` and `apps.TWILIOPhoneNumber`. Without them (local
development, tests) a message goes to the folder `<OUTBOX_DIR>/sms` as one JSON file
`{"created_at", "to", "sender", "text"}`, named like the e-mail outbox files. In Azure
(`KEY_VAULT_URL` set) the outbox is refused, because an instance's disk is no place for codes.

Log lines name the recipient by the last 2 digits only and never contain the message text,
which carries a code.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from cosync.crypto import DecryptionError, decrypt_field
from cosync.secrets import get_secrets
from cosync.settings import get_settings, is_encrypted_or_local

log = logging.getLogger(__name__)

TWILIO_DEFAULT_BASE_URL = "https://api.twilio.com"
TWILIO_TIMEOUT_SECONDS = 10.0
TWILIO_FIELDS = ("TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber")


class SmsError(Exception):
    """Sending an SMS failed. The message states why and contains no credential or code.

    `provider` is Twilio's error (`status`, `code`, `message`) when Twilio
    rejected the request, else None.
    """

    def __init__(self, message: str, provider: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.provider = provider


@dataclass(frozen=True)
class SmsReceipt:
    """The delivery of one message: `channel` is "twilio" (with Twilio's `sid` and `status`) or "outbox"."""

    channel: str
    sid: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    sender: str


def masked(phone: str) -> str:
    """Return a phone number for logs: all but its last 2 digits hidden."""
    return "*" * max(0, len(phone) - 2) + phone[-2:]


def twilio_account(app: dict[str, Any]) -> TwilioAccount | None:
    """Decrypt the app's Twilio credentials; None when the app has none set."""
    if not any(app.get(name) for name in TWILIO_FIELDS):
        return None
    secret = get_secrets().encryption_key
    values = []
    for name in TWILIO_FIELDS:
        stored = app.get(name)
        if not isinstance(stored, str) or not stored:
            raise SmsError(f"app {app['appId']} has an incomplete Twilio account: {name} is not set")
        try:
            values.append(decrypt_field(secret, stored, f"apps.{name}:{app['appId']}"))
        except DecryptionError as error:
            raise SmsError(f"app {app['appId']} Twilio credential {name} does not decrypt: {error}") from None
    return TwilioAccount(*values)


def send_sms(app: dict[str, Any], to: str, text: str) -> SmsReceipt:
    """Send `text` to `to` through the app's Twilio account, or write it to the outbox."""
    account = twilio_account(app)
    if account is not None:
        return _send_with_twilio(account, to, text)
    if get_settings().key_vault_url:
        raise SmsError(f"app {app['appId']} has no Twilio account; set one with updateAppSetting")
    return _write_to_outbox(to, text)


def _twilio_base_url() -> str:
    """Return the Twilio API base URL after checking that credentials travel encrypted."""
    base = get_settings().twilio_api_base_url.rstrip("/")
    if is_encrypted_or_local(base):
        return base
    raise SmsError(
        f"invalid TWILIO_API_BASE_URL {base!r}: use an https:// URL "
        "(plain http is accepted only for 127.0.0.1 and localhost)"
    )


def _twilio_client(account: TwilioAccount) -> Any:
    # Imported here because most invocations send no SMS and cold starts should not pay for it.
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    base_url = _twilio_base_url()

    class RoutedHttpClient(TwilioHttpClient):
        """Sends the requests meant for api.twilio.com to the configured base URL."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if base_url != TWILIO_DEFAULT_BASE_URL and url.startswith(TWILIO_DEFAULT_BASE_URL + "/"):
                url = base_url + url[len(TWILIO_DEFAULT_BASE_URL):]
            return super().request(method, url, *args, **kwargs)

    http_client = RoutedHttpClient(timeout=TWILIO_TIMEOUT_SECONDS, logger=_quiet_twilio_logger())
    return Client(account.account_sid, account.auth_token, http_client=http_client)


def _quiet_twilio_logger() -> logging.Logger:
    # The Twilio client logs each request URL (with the account SID) and response headers at INFO.
    logger = logging.getLogger("twilio.http_client")
    logger.setLevel(logging.WARNING)
    return logger


def _send_with_twilio(account: TwilioAccount, to: str, text: str) -> SmsReceipt:
    from requests import RequestException
    from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

    client = _twilio_client(account)
    try:
        message = client.messages.create(to=to, from_=account.sender, body=text)
    except (TwilioRestException, TwilioServiceException) as error:
        # Twilio returns errors in its legacy format (TwilioRestException) or as RFC 9457
        # problem details (TwilioServiceException).
        text_of_error = getattr(error, "msg", None) or getattr(error, "detail", None) or getattr(error, "title", "")
        provider = {"status": error.status, "code": error.code, "message": text_of_error}
        log.warning("Twilio rejected an SMS to %s: HTTP %s, code %s", masked(to), error.status, error.code)
        raise SmsError(f"Twilio rejected the SMS: HTTP {error.status}, code {error.code}", provider) from None
    except (RequestException, TwilioException, OSError) as error:
        log.warning("Twilio could not be reached: %s", type(error).__name__)
        raise SmsError(f"Twilio could not be reached: {type(error).__name__}") from None
    log.info("sent SMS %s through Twilio to %s (status %s)", message.sid, masked(to), message.status)
    return SmsReceipt(channel="twilio", sid=message.sid, status=message.status)


def _write_to_outbox(to: str, text: str) -> SmsReceipt:
    directory = get_settings().outbox_dir / "sms"
    created_at = datetime.datetime.now(datetime.timezone.utc)
    stem = f"{created_at:%Y%m%dT%H%M%S.%f}Z-{uuid.uuid4()}"
    document = {
        "created_at": created_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "to": to,
        "sender": "outbox",
        "text": text,
    }
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = directory / f".{stem}.json.partial"
        partial.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        path = directory / f"{stem}.json"
        partial.replace(path)
    except OSError as error:
        raise SmsError(f"could not write the SMS to the outbox {directory}: {error}") from None
    log.info("no Twilio account configured: wrote SMS to %s into outbox file %s", masked(to), path)
    return SmsReceipt(channel="outbox")


def read_sms_outbox() -> list[dict[str, Any]]:
    """Read the messages in the SMS outbox, oldest first."""
    directory = get_settings().outbox_dir / "sms"
    if not directory.is_dir():
        return []
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))]
