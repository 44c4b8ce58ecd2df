"""HTML pages shown in a browser: the sign-up link's confirmation page and its results.

Pages load nothing from elsewhere: the style is inline, and the Content-Security-Policy allows
no scripts, images or frames, and form posts only to this origin. Every value is HTML-escaped;
only the operator's `clickThrough` template is inserted as HTML.

Routes pass `error_page` to `cosync.http.respond`, so that errors, a bad app token included,
become pages that describe the outcome, with the error's HTTP status.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

import azure.functions as func

from cosync import errors
from cosync.errors import ApiError

CONFIRM_PATH = "/api/appuser/completeSignup/confirm"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    # The page's address carries the sign-up code.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#222;line-height:1.5}h1{font-size:1.4rem}"
    "button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;"
    "background:#1a5fb4;color:#fff;cursor:pointer}"
)

# Titles and explanations of the failed outcomes, by contract error code.
EXPIRED = ("This link has expired", "Sign up again in the app to receive a new link.")
USED = ("This link was already used", "Your account is confirmed. You can log in in the app.")
INVALID = (
    "This link is not valid",
    "Open the whole link from the newest sign-up e-mail, or sign up again in the app.",
)
UNAVAILABLE = ("Sign-up is not available", "This app does not accept sign-ups at the moment.")
TOO_MANY = ("Too many attempts", "Wait a while, then open the link again.")
FAILED = ("Something went wrong", "The account could not be confirmed. Try again later.")
OUTCOMES = {
    errors.SIGNUP_CODE_EXPRIRED.code: EXPIRED,
    errors.HANDLE_ALREADY_REGISTERED.code: USED,
    errors.APP_NOT_FOUND.code: UNAVAILABLE,
    errors.APP_IS_SUSPENDED.code: UNAVAILABLE,
    errors.APP_IS_MIGRATED.code: UNAVAILABLE,
    errors.APP_ISNOT_SIGNUPABLE.code: UNAVAILABLE,
}


def page(title: str, body_html: str, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """Return a complete HTML page; `title` is escaped here, `body_html` must be escaped already."""
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body_html}\n</body>\n</html>\n"
    )
    return func.HttpResponse(
        document, status_code=status, headers={**HEADERS, **(headers or {})}, mimetype="text/html", charset="utf-8"
    )


def confirmation_page(app_name: str, app_token: str, handle: str, code: str) -> func.HttpResponse:
    """Return the page whose button posts the code to complete the sign-up."""
    action = f"{CONFIRM_PATH}?{urlencode({'appToken': app_token})}"
    body = (
        f"<p>Confirm the account <strong>{html.escape(handle)}</strong> for "
        f"<strong>{html.escape(app_name)}</strong>.</p>\n"
        f'<form method="post" action="{html.escape(action, quote=True)}">\n'
        f'<input type="hidden" name="handle" value="{html.escape(handle, quote=True)}">\n'
        f'<input type="hidden" name="code" value="{html.escape(code, quote=True)}">\n'
        '<button type="submit">Confirm my account</button>\n</form>\n'
        "<p>If you did not sign up, close this page and nothing happens.</p>"
    )
    return page("Confirm your account", body)


def completed_page(click_through_html: str) -> func.HttpResponse:
    return page("Your account is confirmed", click_through_html)


def error_page(error: ApiError) -> func.HttpResponse:
    """Return the page for a failed outcome, with the error's HTTP status (403 for a bad app
    token, as CosyncJWT does for a link with a bad token)."""
    if error.status == 429:
        title, text = TOO_MANY
    elif error.error.code == errors.INTERNAL_SERVER_ERROR.code:
        title, text = FAILED
    else:
        title, text = OUTCOMES.get(error.error.code, INVALID)
    status = 403 if error.error is errors.INVALID_APP_TOKEN else error.status
    return page(title, f"<p>{html.escape(text)}</p>", status=status, headers=error.headers)

