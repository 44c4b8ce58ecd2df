"""Operator routes for app signing keys and JWT audiences, under /api/app with `server-secret`."""

import azure.functions as func

from cosync.http import Call, respond
from cosync.services import app_keys

bp = func.Blueprint()


def _rotate_app_key(call: Call) -> dict:
    call.require_server()
    return app_keys.rotate_app_key(call.body.get("appId"), call.body)


def _set_jwt_audience(call: Call) -> dict:
    call.require_server()
    return app_keys.set_jwt_audience(call.body.get("appId"), call.body)


@bp.function_name("rotateAppKey")
@bp.route(route="app/rotateAppKey", methods=["POST"])
def rotate_app_key(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "rotateAppKey", _rotate_app_key)


@bp.function_name("setJwtAudience")
@bp.route(route="app/setJwtAudience", methods=["POST"])
def set_jwt_audience(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setJwtAudience", _set_jwt_audience)
