"""End-user routes without a password: anonymous login and Sign in with Apple or Google."""

import azure.functions as func

from cosync.http import Call, respond
from cosync.services import anonymous, social

bp = func.Blueprint()


def _login_anonymous(call: Call) -> dict:
    return anonymous.login_anonymous(call.require_app(), call.body, call.client_address)


@bp.function_name("loginAnonymous")
@bp.route(route="appuser/loginAnonymous", methods=["POST"])
def login_anonymous(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "loginAnonymous", _login_anonymous)


@bp.function_name("socialLogin")
@bp.route(route="appuser/socialLogin", methods=["POST"])
def social_login(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "socialLogin", lambda call: social.social_login(call.require_app_id(), call.body))


@bp.function_name("socialSignup")
@bp.route(route="appuser/socialSignup", methods=["POST"])
def social_signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "socialSignup", lambda call: social.social_signup(call.require_app(), call.body))
