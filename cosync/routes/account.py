"""Account routes under /api/appuser: `deleteAccount`."""

import azure.functions as func

from cosync import errors
from cosync.http import Call, respond
from cosync.services import account

bp = func.Blueprint()


def _delete_account(call: Call) -> bool:
    return account.delete_account(call.require_user(missing=errors.MISSING_PARAM), call.body)


@bp.function_name("deleteAccount")
@bp.route(route="appuser/deleteAccount", methods=["POST"])
def delete_account(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "deleteAccount", _delete_account)
