"""E-mail delivery through the real sendgrid client against a local HTTP server, and the outbox."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sendgrid_fake import FakeSendGrid, running_fake_sendgrid

from cosync import mail
from cosync.mail import Attachment, EmailMessage, MailError, read_outbox, send_email
from cosync.settings import get_settings

API_KEY = "SG.test-key.0123456789abcdef"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image"


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point the settings at a temporary outbox. These tests need no database."""
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
    monkeypatch.setenv("OUTBOX_DIR", str(outbox))
    # A closed local port, so that a test without its own server still stays on 127.0.0.1.
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{_closed_port()}")
    get_settings.cache_clear()
    yield outbox
    get_settings.cache_clear()


@pytest.fixture
def sendgrid_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    with running_fake_sendgrid() as fake:
        monkeypatch.setenv("SENDGRID_API_HOST", fake.url)
        get_settings.cache_clear()
        yield fake


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _message(**changes: object) -> EmailMessage:
    values: dict[str, object] = {
        "to": "ann@example.org",
        "subject": "Your sign-up code for Demo App",
        "html": "<p>Hello ann@example.org, your code is <b>482913</b>.</p>",
        "text": "Hello ann@example.org, your code is 482913.",
        "sender": "no-reply@demo.example.com",
        "sender_name": "Demo App",
        "reply_to": "support@demo.example.com",
        "attachments": (),
    }
    values.update(changes)
    return EmailMessage(**values)  # type: ignore[arg-type]


# SendGrid path


def test_sendgrid_posts_to_mail_send(sendgrid_server: FakeSendGrid) -> None:
    send_email(_message(), API_KEY)

    assert len(sendgrid_server.requests) == 1
    request = sendgrid_server.requests[0]
    assert request.method == "POST"
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"


def test_sendgrid_request_body(sendgrid_server: FakeSendGrid) -> None:
    send_email(_message(), API_KEY)

    assert sendgrid_server.requests[0].json() == {
        "from": {"email": "no-reply@demo.example.com", "name": "Demo App"},
        "subject": "Your sign-up code for Demo App",
        "personalizations": [{"to": [{"email": "ann@example.org"}]}],
        "content": [
            {"type": "text/plain", "value": "Hello ann@example.org, your code is 482913."},
            {
                "type": "text/html",
                "value": "<p>Hello ann@example.org, your code is <b>482913</b>.</p>",
            },
        ],
        "reply_to": {"email": "support@demo.example.com"},
    }


def test_sendgrid_attachment_base64(sendgrid_server: FakeSendGrid) -> None:
    qr_code = Attachment(filename="QRCode.png", content=PNG_BYTES, mime_type="image/png")
    notes = Attachment(filename="notes.txt", content="größe".encode(), mime_type="text/plain")

    send_email(_message(attachments=(qr_code, notes)), API_KEY)

    attachments = sendgrid_server.requests[0].json()["attachments"]
    assert attachments == [
        {
            "content": base64.b64encode(PNG_BYTES).decode("ascii"),
            "type": "image/png",
            "filename": "QRCode.png",
            "disposition": "attachment",
        },
        {
            "content": base64.b64encode("größe".encode()).decode("ascii"),
            "type": "text/plain",
            "filename": "notes.txt",
            "disposition": "attachment",
        },
    ]
    assert base64.b64decode(attachments[0]["content"]) == PNG_BYTES


def test_sendgrid_optional_fields_left_out(sendgrid_server: FakeSendGrid) -> None:
    send_email(_message(sender_name=None, reply_to=None, text=""), API_KEY)

    body = sendgrid_server.requests[0].json()
    assert body["from"] == {"email": "no-reply@demo.example.com"}
    assert "reply_to" not in body
    assert "attachments" not in body
    assert body["content"] == [
        {"type": "text/html", "value": "<p>Hello ann@example.org, your code is <b>482913</b>.</p>"}
    ]


def test_sendgrid_success_logs_domain_only(
    sendgrid_server: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    send_email(_message(), API_KEY)

    lines = [record.getMessage() for record in caplog.records if record.name == "cosync.mail"]
    assert lines == [
        "sent e-mail through SendGrid to a recipient at example.org "
        "(HTTP 202, message id test-message-id)"
    ]
    everything = "\n".join(record.getMessage() for record in caplog.records)
    assert API_KEY not in everything
    assert "ann@example.org" not in everything
    assert "482913" not in everything


def test_sendgrid_401_raises_mail_error(sendgrid_server: FakeSendGrid) -> None:
    sendgrid_server.status = 401
    sendgrid_server.body = json.dumps(
        {
            "errors": [
                {
                    "field": None,
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "help": None,
                }
            ]
        }
    ).encode()

    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    assert str(caught.value) == (
        "SendGrid rejected the message: HTTP 401: "
        "The provided authorization grant is invalid, expired, or revoked"
    )
    assert caught.value.status == 401
    assert caught.value.provider_error == {
        "field": None,
        "message": "The provided authorization grant is invalid, expired, or revoked",
        "help": None,
    }
    assert API_KEY not in str(caught.value)


def test_sendgrid_500_without_json_body(sendgrid_server: FakeSendGrid) -> None:
    sendgrid_server.status = 500
    sendgrid_server.body = b"upstream exploded"

    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    assert str(caught.value) == "SendGrid rejected the message: HTTP 500: Internal Server Error"
    assert caught.value.status == 500
    assert caught.value.provider_error is None
    assert API_KEY not in str(caught.value)


def test_sendgrid_error_echoing_key_is_redacted(sendgrid_server: FakeSendGrid) -> None:
    sendgrid_server.status = 403
    echoed = f"API key {API_KEY} lacks the mail.send permission"
    sendgrid_server.body = json.dumps(
        {"errors": [{"field": "api_key", "message": echoed, "help": None}]}
    ).encode()

    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    assert str(caught.value) == (
        "SendGrid rejected the message: HTTP 403: "
        "API key [redacted] lacks the mail.send permission"
    )
    assert caught.value.provider_error == {
        "field": "api_key",
        "message": "API key [redacted] lacks the mail.send permission",
        "help": None,
    }


def test_sendgrid_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{_closed_port()}")
    get_settings.cache_clear()

    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    message = str(caught.value)
    assert message.startswith("SendGrid at http://127.0.0.1:")
    assert "could not be reached: [Errno 111] Connection refused" in message
    assert caught.value.status is None
    assert API_KEY not in message


def test_sendgrid_stalled_server_times_out(
    sendgrid_server: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail, "SENDGRID_TIMEOUT_SECONDS", 0.3)
    sendgrid_server.delay_seconds = 1.0

    started = time.monotonic()
    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    assert time.monotonic() - started < 0.9
    assert str(caught.value) == f"SendGrid at {sendgrid_server.url} could not be reached: timed out"


def test_sendgrid_host_must_be_https(monkeypatch: pytest.MonkeyPatch) -> None:
    # ftp:// to a closed local port: nothing outside 127.0.0.1 is contacted even if the check fails.
    host = f"ftp://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("SENDGRID_API_HOST", host)
    get_settings.cache_clear()

    with pytest.raises(MailError) as caught:
        send_email(_message(), API_KEY)

    assert str(caught.value) == (
        f"invalid SENDGRID_API_HOST {host!r}: use an https:// URL "
        "(plain http is accepted only for 127.0.0.1 and localhost)"
    )


def test_sendgrid_body_resembling_key_not_sent(sendgrid_server: FakeSendGrid) -> None:
    with pytest.raises(MailError) as caught:
        send_email(_message(text="SG.leaked.key123"), API_KEY)

    assert str(caught.value) == (
        "message not sent: the sendgrid package raised ApiKeyIncludedException"
    )
    assert sendgrid_server.requests == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"to": "not-an-address"}, "invalid recipient address"),
        ({"to": "ann@example.org\r\nBcc: eve@example.org"}, "invalid recipient address"),
        ({"to": "@example.org"}, "invalid recipient address"),
        ({"sender": "no-reply"}, "invalid sender address"),
        ({"reply_to": "support @demo.example.com"}, "invalid reply-to address"),
        ({"subject": "Code\r\nBcc: eve@example.org"}, "invalid subject"),
        ({"sender_name": "Demo\nApp"}, "invalid sender name"),
        ({"html": "", "text": ""}, "invalid message"),
    ],
)
def test_invalid_message_rejected(
    sendgrid_server: FakeSendGrid, settings_env: Path, changes: dict, expected: str
) -> None:
    for api_key in (API_KEY, None):
        with pytest.raises(MailError) as caught:
            send_email(_message(**changes), api_key)
        assert str(caught.value).startswith(expected + ":")

    assert sendgrid_server.requests == []
    assert not settings_env.exists()


# Outbox path


def test_outbox_file_per_message(settings_env: Path, sendgrid_server: FakeSendGrid) -> None:
    send_email(_message(), None)
    send_email(_message(to="bob@example.net", subject="Reset your password"), None)

    files = sorted(path.name for path in settings_env.iterdir())
    assert len(files) == 2
    for name in files:
        assert name.endswith(".json")
        assert len(name) == len("20261204T201500.123456Z-") + 36 + len(".json")
        assert name[8] == "T"
        assert name[22] == "Z"
    assert sendgrid_server.requests == []


def test_outbox_stores_exact_fields(settings_env: Path) -> None:
    send_email(_message(), None)

    [path] = settings_env.glob("*.json")
    stored = json.loads(path.read_text(encoding="utf-8"))
    created_at = stored.pop("created_at")
    assert stored == {
        "to": "ann@example.org",
        "subject": "Your sign-up code for Demo App",
        "sender": "no-reply@demo.example.com",
        "sender_name": "Demo App",
        "reply_to": "support@demo.example.com",
        "text": "Hello ann@example.org, your code is 482913.",
        "html": "<p>Hello ann@example.org, your code is <b>482913</b>.</p>",
        "attachments": [],
    }
    # The name starts with the same instant: 20261204T201500.123456Z for 2026-12-04T20:15:00.123456Z
    compact = created_at.replace("-", "").replace(":", "")
    assert path.name.startswith(compact)


def test_outbox_writes_attachments_beside(settings_env: Path) -> None:
    qr_code = Attachment(filename="QRCode.png", content=PNG_BYTES, mime_type="image/png")
    hostile = Attachment(filename="../../escape me.txt", content=b"plain", mime_type="text/plain")

    send_email(_message(attachments=(qr_code, hostile)), None)

    [stored] = read_outbox()
    [path] = settings_env.glob("*.json")
    folder = path.name.removesuffix(".json")
    assert stored["attachments"] == [
        {
            "filename": "QRCode.png",
            "mime_type": "image/png",
            "size": len(PNG_BYTES),
            "path": f"{folder}/1-QRCode.png",
        },
        {
            "filename": "../../escape me.txt",
            "mime_type": "text/plain",
            "size": 5,
            "path": f"{folder}/2-escape_me.txt",
        },
    ]
    assert (settings_env / folder / "1-QRCode.png").read_bytes() == PNG_BYTES
    assert (settings_env / folder / "2-escape_me.txt").read_bytes() == b"plain"
    assert sorted(p.name for p in settings_env.parent.iterdir()) == ["outbox"]


def test_read_outbox_oldest_first(settings_env: Path) -> None:
    subjects = [f"message {number}" for number in range(20)]
    for subject in subjects:
        send_email(_message(subject=subject), None)

    messages = read_outbox()

    assert [message["subject"] for message in messages] == subjects
    assert read_outbox(settings_env) == messages


def test_read_outbox_missing_directory(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "never-created") == []


def test_outbox_creates_nested_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nested = tmp_path / "a" / "b" / "outbox"
    monkeypatch.setenv("OUTBOX_DIR", str(nested))
    get_settings.cache_clear()

    send_email(_message(), None)

    assert [message["to"] for message in read_outbox(nested)] == ["ann@example.org"]


def test_outbox_logs_file_name(settings_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cosync.mail")

    send_email(_message(), None)

    [path] = settings_env.glob("*.json")
    assert [record.getMessage() for record in caplog.records] == [
        f"no SendGrid API key configured: wrote e-mail to outbox file {path}"
    ]


def test_outbox_unwritable_raises_mail_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OUTBOX_DIR", str(blocker / "outbox"))
    get_settings.cache_clear()

    with pytest.raises(MailError) as caught:
        send_email(_message(), None)

    expected = f"could not write the message to the outbox {blocker / 'outbox'}:"
    assert str(caught.value).startswith(expected)
