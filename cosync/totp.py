"""TOTP (RFC 6238) as authenticator apps expect it: HMAC-SHA1, 6 digits, 30-second steps.

The secret is 20 random bytes. Clients receive it as CosyncJWT shows it: base32 (RFC 4648,
no padding) in lower case with a space after every 4 characters, 39 characters in all. The
`otpauth://` URI carries it upper-case without spaces, as the Key URI format requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import re
import secrets
import struct
from urllib.parse import quote

SECRET_BYTES = 20
DIGITS = 6
PERIOD_SECONDS = 30
# Steps accepted on either side of the current one, for clock drift and typing time.
WINDOW_STEPS = 1


class InvalidSecret(ValueError):
    """A stored TOTP secret is not base32."""


def new_secret() -> str:
    """Return a new secret as shown to users: lower-case base32 in groups of 4."""
    encoded = base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=").lower()
    return " ".join(encoded[index:index + 4] for index in range(0, len(encoded), 4))


def secret_key(secret: str) -> bytes:
    """Decode a secret in any of its shown forms (case, spaces, dashes) to its key bytes."""
    compact = re.sub(r"[\s._-]", "", secret).upper()
    try:
        return base64.b32decode(compact + "=" * (-len(compact) % 8))
    except (binascii.Error, ValueError):
        raise InvalidSecret("TOTP secret is not base32") from None


def code_at(key: bytes, step: int) -> str:
    """Return the HOTP value (RFC 4226) of `key` for counter `step`."""
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_step(now: float) -> int:
    return int(now) // PERIOD_SECONDS


def matching_step(key: bytes, code: str, now: float) -> int | None:
    """Return the time step whose code equals `code` within the window, or None.

    Every step of the window is compared, so the time taken does not tell which one matched.
    """
    step_now = current_step(now)
    match = None
    for step in range(step_now - WINDOW_STEPS, step_now + WINDOW_STEPS + 1):
        if hmac.compare_digest(code_at(key, step), code):
            match = step
    return match


def provisioning_uri(issuer: str, account: str, secret: str) -> str:
    """Return the `otpauth://totp/...` URI that authenticator apps read from a QR code."""
    compact = re.sub(r"[\s._-]", "", secret).upper()
    label = f"{quote(issuer, safe='')}:{quote(account, safe='@')}"
    return (
        f"otpauth://totp/{label}?secret={compact}&issuer={quote(issuer, safe='')}"
        f"&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECONDS}"
    )


def qr_png_data_url(text: str) -> str:
    """Render `text` as a QR code PNG and return it as a `data:image/png;base64,` URL."""
    import segno

    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=4, border=4)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
