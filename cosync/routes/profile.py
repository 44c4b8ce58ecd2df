"""Profile routes under /api/appuser: user name, locale and metadata of the signed-in user."""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import profile

bp = func.Blueprint()


def _user_name_available(call: Call) -> dict:
    return profile.user_name_available(call.require_user(missing=errors.INVALID_DATA), call.request.params)


def _set_locale(call: Call) -> bool:
    return profile.set_locale(call.require_user(missing=errors.INVALID_DATA), call.body)


def _set_user_name(call: Call) -> bool:
    return profile.set_user_name(call.require_user(missing=errors.INVALID_DATA), call.body)


def _set_user_metadata(call: Call) -> bool:
    # CosyncJWT returns 403 here when no access token gives a user.
    return profile.set_user_metadata(call.require_user(missing=errors.MISSING_PARAM), call.body)


@bp.function_name("userNameAvailable")
@bp.route(route="appuser/userNameAvailable", methods=["GET"])
def user_name_available(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "userNameAvailable", _user_name_available)


@bp.function_name("setLocale")
@bp.route(route="appuser/setLocale", methods=["POST"])
def set_locale(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setLocale", _set_locale)


@bp.function_name("setUserName")
@bp.route(route="appuser/setUserName", methods=["POST"])
def set_user_name(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setUserName", _set_user_name)


@bp.function_name("setUserMetadata")
@bp.route(route="appuser/setUserMetadata", methods=["POST"])
def set_user_metadata(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setUserMetadata", _set_user_metadata)
