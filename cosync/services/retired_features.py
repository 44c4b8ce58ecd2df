"""Operator routes of CosyncJWT features this server does not carry over.

The MongoDB App Services (formerly Realm) integration and the S3 asset engine ran inside App
Services, which reached end of life on 2025-09-30. Their routes stay, so that a portal or script
calling them gets an error that explains why and what to use instead.
"""

from __future__ import annotations

from typing import Any

from cosync import db, errors
from cosync.errors import ApiError, ErrorCode
from cosync.queries import document_view
from cosync.settings import get_settings

VERSIONS = "versions"


def _app_id_or_placeholder(body: dict[str, Any]) -> str:
    app_id = body.get("appId")
    return app_id if isinstance(app_id, str) and app_id.isalnum() and len(app_id) <= 64 else "{appId}"


def app_services_retired(route: str, body: dict[str, Any]) -> None:
    """Raise HTTP 410 for the App Services JWT provider routes, naming the app's JWKS URL."""
    jwks_url = f"{get_settings().public_base_url}/api/apps/{_app_id_or_placeholder(body)}/jwks.json"
    message = (
        f"{errors.APP_SERVICES_RETIRED.message}, so {route} has nothing to configure. "
        f"Verify the app's JWTs with its public key (appPublicKey) or its JWKS at {jwks_url}"
    )
    raise ApiError(ErrorCode(errors.APP_SERVICES_RETIRED.code, message), f"{route} called", status=410)


def asset_engine_not_supported(route: str) -> None:
    """Raise HTTP 501 for the S3 asset engine routes."""
    message = (
        f"{route} is not supported: the Cosync S3 asset engine ran as MongoDB App Services "
        "functions, and App Services reached end of life on 2025-09-30"
    )
    raise ApiError(ErrorCode(errors.FEATURE_NOT_SUPPORTED.code, message), f"{route} called", status=501)


def save_user_schema_not_supported() -> None:
    """Raise HTTP 501: CosyncJWT declares `saveUserSchema` but never implemented it."""
    message = (
        "saveUserSchema is not supported: CosyncJWT never implemented it; "
        "define user metadata fields with updateAppMetaData"
    )
    raise ApiError(ErrorCode(errors.FEATURE_NOT_SUPPORTED.code, message), "saveUserSchema called", status=501)


def remote_notification_not_supported() -> None:
    """Raise HTTP 501: this server has no Azure Notification Hub connection for push messages."""
    message = (
        "remoteNotification is not supported: this server sends no push notifications; "
        "send them from your own backend"
    )
    raise ApiError(ErrorCode(errors.FEATURE_NOT_SUPPORTED.code, message), "remoteNotification called", status=501)


def list_versions() -> list[dict[str, Any]]:
    """Return the `versions` records of the App Services integrations that CosyncJWT seeded,
    newest first. This server writes none, so only a database taken over from CosyncJWT has them."""
    return [document_view(record) for record in db.collection(VERSIONS).find({}).sort("createdAt", -1)]
