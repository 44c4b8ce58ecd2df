"""End-user invitation routes: `invite` (by a signed-in user) and `register` (by the invitee)."""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import invites

bp = func.Blueprint()


def _invite(call: Call) -> bool:
    # Only an access token names the inviter. The Kotlin SDK sends the app token here, which
    # is public, so accepting it would let anyone send invitation mail; CosyncJWT returns 403.
    return invites.invite(call.require_user(missing=errors.MISSING_PARAM), call.body)


def _register(call: Call) -> dict:
    return invites.register(call.require_app_id(), call.body, call.client_address)


@bp.function_name("invite")
@bp.route(route="appuser/invite", methods=["POST"])
def invite(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "invite", _invite)


@bp.function_name("register")
@bp.route(route="appuser/register", methods=["POST"])
def register(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "register", _register)
