"""Operator routes under /api/app, authorised by the `server-secret` header."""

import azure.functions as func

from cosync.http import Call, respond
from cosync.services import apps

bp = func.Blueprint()


def _create_app(call: Call) -> dict:
    call.require_server()
    return apps.create_app(call.body.get("name"), call.body.get("jwtEnabled", False))


def _read_app(call: Call) -> dict:
    call.require_server()
    return apps.admin_view(apps.load_app(call.request.route_params["appId"]))


@bp.function_name("createApp")
@bp.route(route="app", methods=["POST"])
def create_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "createApp", _create_app)


@bp.function_name("readApp")
@bp.route(route="app/appId/{appId}", methods=["GET"])
def read_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "readApp", _read_app)
