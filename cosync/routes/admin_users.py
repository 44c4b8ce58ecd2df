"""Operator routes under /api/app for an app's users and sign-ups, and app export and import.

Every route needs the `server-secret` header. The functions are named after the routes, so
Azure's metrics and logs read like the API.
"""

import azure.functions as func

from cosync.http import Call, json_response, respond
from cosync.search import Page
from cosync.services import operator_users, transfer

bp = func.Blueprint()


def _page_response(page: Page) -> func.HttpResponse:
    # The body stays the array CosyncJWT returns; the total is a header for the pager.
    return json_response(page.items, headers={"X-Total-Count": str(page.total)})


def _search_users(call: Call) -> func.HttpResponse:
    call.require_server()
    return _page_response(operator_users.search_users(dict(call.request.params)))


def _search_signups(call: Call) -> func.HttpResponse:
    call.require_server()
    return _page_response(operator_users.search_signups(dict(call.request.params)))


def _server_call(service):
    """Return the work of a POST route: check the server secret, then run `service(body)`."""

    def work(call: Call):
        call.require_server()
        return service(call.body)

    return work


def _export(call: Call) -> func.HttpResponse:
    call.require_server()
    exported = transfer.export_app(call.request.params.get("appId"))
    return func.HttpResponse(
        exported.content,
        status_code=200,
        mimetype="application/json",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{exported.file_name}"',
            "Cache-Control": "no-store",
        },
    )


def _import(call: Call) -> dict:
    call.require_server()
    upload = transfer.read_upload(
        call.request.get_body() or b"", call.request.headers.get("content-type") or "", dict(call.request.params)
    )
    return transfer.import_upload(upload)


@bp.function_name("searchUser")
@bp.route(route="app/searchUser", methods=["GET"])
def search_user(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "searchUser", _search_users)


# The path keeps CosyncJWT's spelling, because clients call it by that name.
@bp.function_name("searchSingUp")
@bp.route(route="app/searchSingUp", methods=["GET"])
def search_signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "searchSingUp", _search_signups)


@bp.function_name("removeAppSignup")
@bp.route(route="app/removeAppSignup", methods=["POST"])
def remove_app_signup(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "removeAppSignup", _server_call(operator_users.remove_signup))


@bp.function_name("setUserStatus")
@bp.route(route="app/user", methods=["POST"])
def set_user_status(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "setUserStatus", _server_call(operator_users.set_user_status))


@bp.function_name("updateAppUserMetaData")
@bp.route(route="app/updateAppUserMetaData", methods=["POST"])
def update_app_user_metadata(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "updateAppUserMetaData", _server_call(operator_users.update_user_metadata))


@bp.function_name("addUser")
@bp.route(route="app/addUser", methods=["POST"])
def add_user(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "addUser", _server_call(operator_users.add_user))


@bp.function_name("removeUser")
@bp.route(route="app/removeUser", methods=["POST"])
def remove_user(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "removeUser", _server_call(operator_users.remove_user))


@bp.function_name("exportApp")
@bp.route(route="app/export", methods=["GET"])
def export_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "exportApp", _export)


# The body is read by the import itself: it may be larger than other request bodies.
@bp.function_name("importDatabase")
@bp.route(route="app/importDatabase", methods=["POST"])
def import_database(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return respond(req, context, "importDatabase", _import, read_body=False)
