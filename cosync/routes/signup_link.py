"""The browser side of the sign-up link flow: the page the e-mailed link opens (GET
/api/appuser/completeSignup) and the confirmation its button posts."""

import azure.functions as func

from cosync import pages
from cosync.http import Call, respond
from cosync.services import signup_link

bp = func.Blueprint()


def _show_confirmation(call: Call) -> func.HttpResponse:
    details = signup_link.confirmation(call.require_app(), call.request.params, call.client_address)
    return pages.confirmation_page(**details)


def _confirm(call: Call) -> func.HttpResponse:
    return pages.completed_page(signup_link.confirm(call.require_app(), call.body, call.client_address))


@bp.function_name("completeSignupLink")
@bp.route(route="appuser/completeSignup", methods=["GET"])
def complete_signup_link(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "completeSignupLink", _show_confirmation, render_error=pages.error_page)


@bp.function_name("confirmSignup")
@bp.route(route="appuser/completeSignup/confirm", methods=["POST"])
def confirm_signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "confirmSignup", _confirm, render_error=pages.error_page)
