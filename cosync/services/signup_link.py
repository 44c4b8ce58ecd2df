"""The link flow of sign-up: the page that the e-mailed link opens, and its confirmation.

Opening the link (GET completeSignup) changes nothing: it shows a page whose button posts the
code. Mail scanners that fetch every link in a message therefore cannot complete a sign-up,
unlike in CosyncJWT, where the GET itself created the account. The posted confirmation is an
ordinary completeSignup, with the same code checks and limits.
"""

from __future__ import annotations

from typing import Any, Mapping

from cosync import db, errors, ratelimit, templates
from cosync.errors import ApiError
from cosync.services.apps import load_active_app
from cosync.services.signup import check_signup_enabled, complete_signup
from cosync.validation import require_code, require_email_handle, require_text


def confirmation(app_id: str, query: Mapping[str, str], address: str) -> dict[str, str]:
    """Check the link's query and return what the confirmation page shows and posts.

    The code itself is checked only when the page is confirmed, so that opening a link never
    spends one of the code's guesses.
    """
    fields = dict(query)
    app_token = require_text(fields, "appToken")
    handle = require_email_handle(fields)
    code = require_code(fields)
    app = load_active_app(app_id)
    check_signup_enabled(app)
    ratelimit.hit(ratelimit.CODE_CHECKS_PER_ADDRESS, f"{app_id}:{address}")
    return {"app_name": str(app.get("name") or ""), "app_token": app_token, "handle": handle, "code": code}


def confirm(app_id: str, body: dict[str, Any], address: str) -> str:
    """Complete the sign-up with the posted code; return the app's `clickThrough` text as HTML.

    The placeholders are HTML-escaped; the template itself is the operator's HTML.
    """
    complete_signup(app_id, body, address)
    app = load_active_app(app_id)
    handle = require_email_handle(body)
    user = db.collection(db.USERS).find_one({"appId": app_id, "handle": handle}, {"locale": 1})
    if user is None:
        raise ApiError(errors.INTERNAL_SERVER_ERROR, "user missing right after sign-up")
    template = templates.find_template(db.get_database(), app_id, templates.CLICK_THROUGH, user.get("locale"))
    values = {"APP_NAME": str(app.get("name") or ""), "HANDLE": handle, "CODE": require_code(body)}
    return templates.render(template.html, values, escape=True)
