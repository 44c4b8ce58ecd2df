"""Request parsing, caller resolution and responses for the HTTP-triggered functions.

A route function calls `respond(req, context, action, work)`: the request is parsed into a
`Call`, `work(call)` runs the service, and its result (an object, `True`, or a ready response)
or the `ApiError` it raised becomes the response. Anything else raised is logged with the
invocation id and returned as code 500, so a bug never takes the worker down.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

import azure.functions as func

from cosync import errors
from cosync.errors import ApiError
from cosync.secrets import MissingSecretError
from cosync.settings import get_settings
from cosync.auth import ANONYMOUS, Caller, resolve_caller
from cosync.tokens import SCOPE_APP, SCOPE_SERVER, SCOPE_USER

log = logging.getLogger(__name__)



@dataclass
class Call:
    request: func.HttpRequest
    body: dict[str, Any]
    caller: Caller
    invocation_id: str

    def require_app(self) -> str:
        """Return the app id of an app-token caller; raise INVALID_APP_TOKEN otherwise."""
        if self.caller.scope != SCOPE_APP or not self.caller.app_id:
            raise ApiError(errors.INVALID_APP_TOKEN, "route needs an app token")
        return self.caller.app_id

    def require_user(self, missing: errors.ErrorCode = errors.INVALID_ACCESS_TOKEN) -> Caller:
        """Return an access-token caller; raise `missing` otherwise."""
        if self.caller.scope != SCOPE_USER or not self.caller.handle or not self.caller.app_id:
            raise ApiError(missing, "route needs an access token")
        return self.caller

    def require_app_id(self, missing: errors.ErrorCode = errors.INVALID_APP_TOKEN) -> str:
        """Return the app id of an app-token or access-token caller; raise `missing` otherwise."""
        if self.caller.scope not in (SCOPE_APP, SCOPE_USER) or not self.caller.app_id:
            raise ApiError(missing, "route needs an app or access token")
        return self.caller.app_id

    @property
    def client_address(self) -> str:
        """The client's IP address, for rate limits and logs; "unknown" when absent.

        Azure's front ends append the address they accepted the connection from (with its
        port) to `X-Forwarded-For`, so the last entry is the one a client cannot forge.
        """
        forwarded = self.request.headers.get("x-forwarded-for") or ""
        return client_address_of(forwarded.split(",")[-1].strip()) or "unknown"

    def require_server(self, status: int = 403) -> None:
        """Raise INVALID_ADMIN_TOKEN with HTTP `status` unless the caller presents the server secret."""
        if self.caller.scope != SCOPE_SERVER:
            raise ApiError(errors.INVALID_ADMIN_TOKEN, "route needs the server secret", status=status)


def client_address_of(entry: str) -> str:
    """Strip the port from `1.2.3.4:5678` or `[2001:db8::1]:5678`; a bare address stays."""
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def parse_body(request: func.HttpRequest) -> dict[str, Any]:
    """Parse a JSON or form-urlencoded body into a dict; an empty body gives {}.

    Form bodies are decoded leniently, as the Swift SDK sends values without percent-encoding:
    `+` becomes a space, malformed `%` escapes stay as they are, and a name without `=` has the
    value "". A body without a Content-Type is read as JSON when it starts with `{`, else as form.
    """
    raw = request.get_body() or b""
    if len(raw) > get_settings().max_body_bytes:
        raise ApiError(errors.INVALID_DATA, f"body of {len(raw)} bytes exceeds the limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(errors.INVALID_DATA, "body is not UTF-8") from None
    if not text.strip():
        return {}
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json" or (not content_type and text.lstrip().startswith("{")):
        return _parse_json_object(text)
    if content_type in ("", "application/x-www-form-urlencoded"):
        return parse_form(text)
    raise ApiError(errors.INVALID_DATA, f"unsupported content type {content_type!r}")


def _parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
        # `\ud800` escapes decode to lone surrogates, which no later step can encode.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise ApiError(errors.INVALID_DATA, "body is not valid JSON") from None
    except RecursionError:
        # The json module recurses once per nesting level, and 100 KiB of brackets exceeds
        # Python's recursion limit.
        raise ApiError(errors.INVALID_DATA, "JSON body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(errors.INVALID_DATA, "JSON body is not an object")
    return value


def parse_form(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        try:
            name = unquote(name.replace("+", " "), errors="strict")
            value = unquote(value.replace("+", " "), errors="strict")
        except UnicodeDecodeError:
            raise ApiError(errors.INVALID_DATA, "form field is not UTF-8 after percent-decoding") from None
        if name in result:
            previous = result[name]
            result[name] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            result[name] = value
    return result


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
        mimetype="application/json",
        charset="utf-8",
    )


def true_response() -> func.HttpResponse:
    """Return the acknowledgement body, exactly the four characters `true`, because the Swift SDK
    compares the body text."""
    return func.HttpResponse("true", status_code=200, mimetype="application/json", charset="utf-8")


def error_response(error: ApiError) -> func.HttpResponse:
    return json_response(error.body(), status=error.status, headers=error.headers)


def _invocation_id(context: Any) -> str:
    return str(getattr(context, "invocation_id", None) or "-")


def respond(
    request: func.HttpRequest,
    context: Any,
    action: str,
    work: Callable[[Call], Any],
    authenticate: bool = True,
    read_body: bool = True,
    render_error: Callable[[ApiError], func.HttpResponse] = error_response,
) -> func.HttpResponse:
    """Parse `request`, run `work`, and turn its result or error into the response.

    With `authenticate=False` (public documents) token headers are ignored, not verified.
    With `read_body` false the body is left to `work`, which then applies its own size limit.
    `render_error` builds the response for an error; pages shown in a browser pass their own.
    """
    invocation_id = _invocation_id(context)
    call = Call(
        request=request,
        body={},
        caller=ANONYMOUS,
        invocation_id=invocation_id,
    )
    try:
        if authenticate:
            call.caller = resolve_caller(request.headers, request.params)
        if read_body and request.method.upper() not in ("GET", "HEAD", "DELETE"):
            call.body = parse_body(request)
        result = work(call)
    except ApiError as error:
        log.info(
            "%s failed with code %s: %s [app %s, invocation %s]",
            action, error.error.code, error.detail or error.error.message, call.caller.app_id or "-", invocation_id,
        )
        return render_error(error)
    except MissingSecretError:
        log.exception("%s failed: a server secret is missing [invocation %s]", action, invocation_id)
        return render_error(ApiError(errors.INTERNAL_SERVER_ERROR))
    except Exception:
        log.exception("%s failed with an unexpected error [invocation %s]", action, invocation_id)
        return render_error(ApiError(errors.INTERNAL_SERVER_ERROR))
    if isinstance(result, func.HttpResponse):
        return result
    if result is True:
        return true_response()
    return json_response(result)
