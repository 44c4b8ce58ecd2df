"""End-user routes under /api/appuser, called by the Cosync SDKs.

Each function is named in Azure after its route, so metrics and logs read like the API.
"""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import apps, login as login_service, signup as signup_service, users

bp = func.Blueprint()


def _get_application(call: Call) -> dict:
    # Without any token the reference server returns 602, not an authentication error.
    return apps.application(call.require_app_id(missing=errors.INVALID_DATA))


def _get_user(call: Call) -> dict:
    # The reference server returns 602 when no access token gives a handle. An invalid
    # access token is still 405.
    return users.get_user(call.require_user(missing=errors.INVALID_DATA))


def _signup(call: Call) -> object:
    return signup_service.signup(call.require_app(), call.body, call.client_address)


def _complete_signup(call: Call) -> dict:
    return signup_service.complete_signup(call.require_app_id(), call.body, call.client_address)


def _login(call: Call) -> dict:
    return login_service.login(call.require_app(), call.body, call.client_address)


@bp.function_name("getApplication")
@bp.route(route="appuser/getApplication", methods=["GET"])
def get_application(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "getApplication", _get_application)


@bp.function_name("signup")
@bp.route(route="appuser/signup", methods=["POST"])
def signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "signup", _signup)


@bp.function_name("completeSignup")
@bp.route(route="appuser/completeSignup", methods=["POST"])
def complete_signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "completeSignup", _complete_signup)


@bp.function_name("login")
@bp.route(route="appuser/login", methods=["POST"])
def login(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "login", _login)


@bp.function_name("getUser")
@bp.route(route="appuser/getUser", methods=["GET"])
def get_user(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "getUser", _get_user)
