"""Operator routes under /api/app, authorised by the `server-secret` header.

A caller without the server secret (no header, an app token or an access token) gets
`{"code": 400, "message": "invalid admin token"}` with the HTTP status CosyncJWT uses for the
route: 400 for create, update, deleteMetadata and delete, 403 for the others. A
`server-secret` header whose token does not verify gets HTTP 401 on every route.
"""

from __future__ import annotations

from typing import Any, Callable

import azure.functions as func

from cosync.http import Call, respond
from cosync.services import app_data, app_logs, app_settings, apps, email_extension, email_templates
from cosync.services import retired_features as retired
from cosync.validation import require_text

bp = func.Blueprint()


def _operator(
    req: func.HttpRequest, context: func.Context, action: str, work: Callable[[Call], Any], auth_status: int = 403
) -> func.HttpResponse:
    def run(call: Call) -> Any:
        call.require_server(status=auth_status)
        return work(call)

    return respond(req, context, action, run)


def _params(call: Call) -> dict[str, Any]:
    return dict(call.request.params)


def _required_app_id(call: Call) -> str:
    # GET routes name the app in the query, POST routes in the body.
    return require_text({**_params(call), **call.body}, "appId")


@bp.function_name("createApp")
@bp.route(route="app", methods=["POST"])
def create_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "createApp",
        lambda call: apps.create_app(call.body.get("name"), call.body.get("jwtEnabled", False)), auth_status=400,
    )


@bp.function_name("connection")
@bp.route(route="app/connection", methods=["GET"])
def connection(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "connection", lambda call: True)


@bp.function_name("allApps")
@bp.route(route="app/allApps", methods=["GET"])
def all_apps(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "allApps", lambda call: apps.list_apps())


@bp.function_name("readApp")
@bp.route(route="app/appId/{appId}", methods=["GET"])
def read_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "readApp", lambda call: apps.admin_view(apps.load_app(req.route_params["appId"])))


@bp.function_name("searchApps")
@bp.route(route="app/search", methods=["GET"])
def search_apps(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    def work(call: Call) -> Any:
        params = _params(call)
        return apps.search_apps(params.get("name"), params.get("case"), params.get("offset"), params.get("limit"))

    return _operator(req, context, "searchApps", work)


@bp.function_name("updateApp")
@bp.route(route="app/update", methods=["POST"])
def update_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "updateApp", lambda call: app_settings.update_app(call.body), auth_status=400)


@bp.function_name("deleteMetadata")
@bp.route(route="app/deleteMetadata", methods=["POST"])
def delete_metadata(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "deleteMetadata", lambda call: app_settings.delete_definition(call.body), auth_status=400
    )


@bp.function_name("deleteApp")
@bp.route(route="app/{appId}", methods=["DELETE"])
def delete_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "deleteApp", lambda call: app_data.delete_app(req.route_params["appId"]), auth_status=400)


@bp.function_name("updateAppSetting")
@bp.route(route="app/updateAppSetting", methods=["POST"])
def update_app_setting(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "updateAppSetting", lambda call: app_settings.update_setting(call.body))


@bp.function_name("updateAppMetaData")
@bp.route(route="app/updateAppMetaData", methods=["POST"])
def update_app_metadata(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "updateAppMetaData", lambda call: app_settings.replace_definitions(call.body, "metaData")
    )


@bp.function_name("updateAppInviteMetaData")
@bp.route(route="app/updateAppInviteMetaData", methods=["POST"])
def update_app_invite_metadata(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "updateAppInviteMetaData",
        lambda call: app_settings.replace_definitions(call.body, "metaDataInvite"),
    )


@bp.function_name("emailTemplates")
@bp.route(route="app/emailTemplates", methods=["GET"])
def email_templates_list(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "emailTemplates", lambda call: email_templates.list_templates(_required_app_id(call))
    )


@bp.function_name("addRemoveAppLocale")
@bp.route(route="app/addRemoveAppLocale", methods=["POST"])
def add_remove_app_locale(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "addRemoveAppLocale",
        lambda call: email_templates.set_locales(_required_app_id(call), call.body.get("locales")),
    )


@bp.function_name("updateEmailTemplate")
@bp.route(route="app/updateEmailTemplate", methods=["POST"])
def update_email_template(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "updateEmailTemplate", lambda call: email_templates.update_template(call.body))


@bp.function_name("patchAppLocales")
@bp.route(route="app/patchAppLocales", methods=["POST"])
def patch_app_locales(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "patchAppLocales", lambda call: email_templates.patch_app_locales())


@bp.function_name("appLogs")
@bp.route(route="app/logs", methods=["GET"])
def app_logs_list(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "appLogs", lambda call: app_logs.list_logs(_params(call)))


@bp.function_name("appStat")
@bp.route(route="app/stat", methods=["GET"])
def app_stat(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "appStat", lambda call: app_logs.app_stats(_params(call)))


@bp.function_name("resetApp")
@bp.route(route="app/reset", methods=["POST"])
def reset_app(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "resetApp", lambda call: app_data.reset_app(_required_app_id(call)))


@bp.function_name("testEmailExtension")
@bp.route(route="app/testEmailExtension", methods=["POST"])
def test_email_extension(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "testEmailExtension", lambda call: email_extension.send_test_email(call.body))


@bp.function_name("getCosyncVersions")
@bp.route(route="app/getCosyncVersions", methods=["GET"])
def get_cosync_versions(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "getCosyncVersions", lambda call: retired.list_versions())


@bp.function_name("saveUserSchema")
@bp.route(route="app/saveUserSchema", methods=["POST"])
def save_user_schema(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "saveUserSchema", lambda call: retired.save_user_schema_not_supported())


@bp.function_name("remoteNotification")
@bp.route(route="app/remoteNotification", methods=["POST"])
def remote_notification(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "remoteNotification", lambda call: retired.remote_notification_not_supported())


# MongoDB App Services reached end of life on 2025-09-30, so these routes return an error that
# names the app's JWKS instead.


@bp.function_name("initCosyncJWT")
@bp.route(route="app/initCosyncJWT", methods=["POST"])
def init_cosync_jwt(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "initCosyncJWT", lambda call: retired.app_services_retired("initCosyncJWT", call.body))


@bp.function_name("reinitCosyncJWT")
@bp.route(route="app/reinitCosyncJWT", methods=["POST"])
def reinit_cosync_jwt(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "reinitCosyncJWT", lambda call: retired.app_services_retired("reinitCosyncJWT", call.body)
    )


@bp.function_name("removeCosyncJWT")
@bp.route(route="app/removeCosyncJWT", methods=["POST"])
def remove_cosync_jwt(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "removeCosyncJWT", lambda call: retired.app_services_retired("removeCosyncJWT", call.body)
    )


@bp.function_name("initCosyncEngine")
@bp.route(route="app/initCosyncEngine", methods=["POST"])
def init_cosync_engine(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(req, context, "initCosyncEngine", lambda call: retired.asset_engine_not_supported("initCosyncEngine"))


@bp.function_name("reinitCosyncEngine")
@bp.route(route="app/reinitCosyncEngine", methods=["POST"])
def reinit_cosync_engine(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "reinitCosyncEngine", lambda call: retired.asset_engine_not_supported("reinitCosyncEngine")
    )


@bp.function_name("removeCosyncEngine")
@bp.route(route="app/removeCosyncEngine", methods=["POST"])
def remove_cosync_engine(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _operator(
        req, context, "removeCosyncEngine", lambda call: retired.asset_engine_not_supported("removeCosyncEngine")
    )
