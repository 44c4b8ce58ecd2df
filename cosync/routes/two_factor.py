"""Two-factor routes under /api/appuser: completing a login and switching the second factor.

The Swift SDK calls the two switches at `//api/appuser/...`; the development server collapses
the repeated slash.
"""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import two_factor

bp = func.Blueprint()


def _login_complete(call: Call) -> dict:
    return two_factor.login_complete(call.require_app_id(), call.body, call.client_address)


def _set_google(call: Call) -> object:
    # As in CosyncJWT, a caller without an access token gets 602.
    return two_factor.set_two_factor(call.require_user(missing=errors.INVALID_DATA), call.body, two_factor.GOOGLE)


def _set_phone(call: Call) -> object:
    return two_factor.set_two_factor(call.require_user(missing=errors.INVALID_DATA), call.body, two_factor.PHONE)


@bp.function_name("loginComplete")
@bp.route(route="appuser/loginComplete", methods=["POST"])
def login_complete(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "loginComplete", _login_complete)


@bp.function_name("setTwoFactorGoogleVerification")
@bp.route(route="appuser/setTwoFactorGoogleVerification", methods=["POST"])
def set_two_factor_google(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setTwoFactorGoogleVerification", _set_google)


@bp.function_name("setTwoFactorPhoneVerification")
@bp.route(route="appuser/setTwoFactorPhoneVerification", methods=["POST"])
def set_two_factor_phone(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setTwoFactorPhoneVerification", _set_phone)
