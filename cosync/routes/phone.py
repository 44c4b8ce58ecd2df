"""Phone routes: `setPhone` and `verifyPhone` for end users, and the operator's test SMS."""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import phone

bp = func.Blueprint()


def _set_phone(call: Call) -> bool:
    # As in CosyncJWT, a caller without an access token gets 602.
    return phone.set_phone(call.require_user(missing=errors.INVALID_DATA), call.body, call.client_address)


def _verify_phone(call: Call) -> bool:
    return phone.verify_phone(call.require_user(missing=errors.INVALID_DATA), call.body, call.client_address)


def _test_app_twilio(call: Call) -> dict:
    call.require_server()
    return phone.send_test_sms(call.body)


@bp.function_name("setPhone")
@bp.route(route="appuser/setPhone", methods=["POST"])
def set_phone(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setPhone", _set_phone)


@bp.function_name("verifyPhone")
@bp.route(route="appuser/verifyPhone", methods=["POST"])
def verify_phone(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "verifyPhone", _verify_phone)


@bp.function_name("testAppTwilio")
@bp.route(route="app/testAppTwilio", methods=["POST"])
def send_app_twilio_test(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "testAppTwilio", _test_app_twilio)
