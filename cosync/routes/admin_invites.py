"""Operator invitation routes under /api/app, authorised by the `server-secret` header."""

import azure.functions as func

from cosync.http import Call, respond
from cosync.services import invites

bp = func.Blueprint()


def _create(call: Call) -> dict:
    call.require_server()
    return invites.create_app_invites(call.body.get("appId"), call.body.get("handle"), call.body.get("locale"))


def _resend(call: Call) -> bool:
    call.require_server()
    return invites.resend_app_invite(call.body.get("appId"), call.body.get("handle"))


def _remove(call: Call) -> dict:
    call.require_server()
    return invites.remove_app_invite(call.body.get("appId"), call.body.get("handle"))


def _search(call: Call) -> list:
    call.require_server()
    params = call.request.params
    return invites.search_invites(params.get("appId"), params.get("value"), params.get("page"), params.get("limit"))


@bp.function_name("createAppInvite")
@bp.route(route="app/createAppInvite", methods=["POST"])
def create_app_invite(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "createAppInvite", _create)


@bp.function_name("resendAppInvite")
@bp.route(route="app/resendAppInvite", methods=["POST"])
def resend_app_invite(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "resendAppInvite", _resend)


@bp.function_name("removeAppInvite")
@bp.route(route="app/removeAppInvite", methods=["POST"])
def remove_app_invite(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "removeAppInvite", _remove)


@bp.function_name("searchInvite")
@bp.route(route="app/searchInvite", methods=["GET"])
def search_invite(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "searchInvite", _search)
