"""Operator routes of features this server does not carry over, and getCosyncVersions."""

from __future__ import annotations

import datetime

import pytest

from cosync import db
from admin_helpers import operator  # noqa: F401 (fixture)


@pytest.mark.parametrize("route", ["initCosyncJWT", "reinitCosyncJWT", "removeCosyncJWT"])
def test_app_services_routes_explain_end_of_life(operator, new_app, database, route):
    app = new_app()
    before = database[db.APPS].find_one({"appId": app["appId"]})

    response = operator.post(f"/{route}", {"appId": app["appId"], "projectId": "p", "publicKey": "k", "privateKey": "s"})

    assert response.status_code == 410
    assert response.json() == {
        "code": 702,
        "message": (
            f"MongoDB App Services reached end of life on 2025-09-30, so {route} has nothing to configure. "
            "Verify the app's JWTs with its public key (appPublicKey) or its JWKS at "
            f"http://127.0.0.1:7071/api/apps/{app['appId']}/jwks.json"
        ),
    }
    assert database[db.APPS].find_one({"appId": app["appId"]}) == before


def test_app_services_route_without_app_id_names_placeholder(operator):
    response = operator.post("/initCosyncJWT", {"appId": "../x"})
    assert response.status_code == 410
    assert response.json()["message"].endswith("/api/apps/{appId}/jwks.json")


@pytest.mark.parametrize("route", ["initCosyncEngine", "reinitCosyncEngine", "removeCosyncEngine"])
def test_asset_engine_routes_not_supported(operator, route):
    response = operator.post(f"/{route}", {"appId": "x", "s3Bucket": "b"})

    assert response.status_code == 501
    assert response.json() == {
        "code": 701,
        "message": (
            f"{route} is not supported: the Cosync S3 asset engine ran as MongoDB App Services functions, "
            "and App Services reached end of life on 2025-09-30"
        ),
    }


def test_save_user_schema_not_supported(operator):
    response = operator.post("/saveUserSchema", {"appId": "x", "schema": {}})

    assert response.status_code == 501
    assert response.json()["code"] == 701
    assert response.json()["message"].startswith("saveUserSchema is not supported")


def test_remote_notification_not_supported(operator):
    response = operator.post("/remoteNotification", {"userId": "u", "message": "hi"})

    assert response.status_code == 501
    assert response.json()["code"] == 701
    assert response.json()["message"].startswith("remoteNotification is not supported")


def test_cosync_versions_lists_stored_records(operator, database):
    database["versions"].delete_many({})
    assert operator.get("/getCosyncVersions").json() == []
    older = datetime.datetime(2023, 1, 1, tzinfo=datetime.timezone.utc)
    database["versions"].insert_many([
        {"name": "CosyncJWT", "service": "CosyncJWT", "status": "active", "desc": "JWT", "versionNumber": "1.0.1",
         "createdAt": older},
        {"name": "CosyncEngine", "service": "CosyncEngine", "status": "active", "desc": "Engine", "versionNumber": "1.0.1",
         "createdAt": older + datetime.timedelta(days=1), "__v": 0},
    ])

    response = operator.get("/getCosyncVersions")

    assert response.status_code == 200
    body = response.json()
    assert [item["service"] for item in body] == ["CosyncEngine", "CosyncJWT"]
    assert body[0]["createdAt"] == "2023-01-02T00:00:00.000Z"
    assert len(body[0]["_id"]) == 24
    assert "__v" not in body[0]
    database["versions"].delete_many({})
