"""Public documents under /api/apps/{appId}: OpenID Connect discovery and the JWK Set.

They need no token, any origin may read them, and shared caches may keep them for a while. The
JWK Set is cached for less time, because a verifier that meets an unknown `kid` after a key
rotation has to fetch it again.
"""

from typing import Any, Callable

import azure.functions as func

from cosync.http import Call, json_response, respond
from cosync.services import discovery

bp = func.Blueprint()

# NOTE: the dotted literal segments (`.well-known`, `jwks.json`) are tested with the development
# server only, not yet with the Functions host in Azure.
DISCOVERY_MAX_AGE_SECONDS = 3600
JWKS_MAX_AGE_SECONDS = 300


def _public_document(build: Callable[[str], Any], max_age: int) -> Callable[[Call], func.HttpResponse]:
    def work(call: Call) -> func.HttpResponse:
        document = build(call.request.route_params["appId"])
        headers = {"Cache-Control": f"public, max-age={max_age}", "Access-Control-Allow-Origin": "*"}
        return json_response(document, headers=headers)

    return work


@bp.function_name("openidConfiguration")
@bp.route(route="apps/{appId}/.well-known/openid-configuration", methods=["GET"])
def openid_configuration(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    work = _public_document(discovery.openid_configuration, DISCOVERY_MAX_AGE_SECONDS)
    return respond(req, context, "openidConfiguration", work, authenticate=False)


@bp.function_name("jwks")
@bp.route(route="apps/{appId}/jwks.json", methods=["GET"])
def jwks(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    work = _public_document(discovery.app_jwk_set, JWKS_MAX_AGE_SECONDS)
    return respond(req, context, "jwks", work, authenticate=False)
