"""Password routes: reset by e-mailed code and change for end users under /api/appuser, and
the operator's reset under /api/app."""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import password

bp = func.Blueprint()


def _forgot_password(call: Call) -> bool:
    return password.forgot_password(call.require_app_id(missing=errors.MISSING_PARAM), call.body, call.client_address)


def _reset_password(call: Call) -> bool:
    # The Kotlin SDK sends the app token in the `access-token` header; callers are classified by
    # the token's scope, so that works.
    return password.reset_password(call.require_app_id(missing=errors.MISSING_PARAM), call.body, call.client_address)


def _change_password(call: Call) -> bool:
    # CosyncJWT returns 602, not an authentication error, when no access token names a user.
    return password.change_password(call.require_user(missing=errors.INVALID_DATA), call.body)


def _reset_user_password(call: Call) -> bool:
    call.require_server()
    return password.reset_user_password(call.body)


@bp.function_name("forgotPassword")
@bp.route(route="appuser/forgotPassword", methods=["POST"])
def forgot_password(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "forgotPassword", _forgot_password)


@bp.function_name("resetPassword")
@bp.route(route="appuser/resetPassword", methods=["POST"])
def reset_password(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "resetPassword", _reset_password)


@bp.function_name("changePassword")
@bp.route(route="appuser/changePassword", methods=["POST"])
def change_password(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "changePassword", _change_password)


@bp.function_name("resetUserPassword")
@bp.route(route="app/resetUserPassword", methods=["POST"])
def reset_user_password(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "resetUserPassword", _reset_user_password)
