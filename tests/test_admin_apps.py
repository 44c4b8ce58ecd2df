"""POST /api/app and GET /api/app/appId/{appId}, authorised by the server secret."""

from __future__ import annotations

import base64
import re

import jwt
from cryptography.hazmat.primitives import serialization

from cosync import db
from cosync.templates import DEFAULT_TEMPLATES
from flows import error, register_user

ISO_MILLISECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_create_app_returns_contract_shape(api, server_secret, database):
    response = api.post("/api/app", headers={"server-secret": server_secret}, json={"name": "Shape app", "jwtEnabled": True})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "name", "appId", "appToken", "appPublicKey", "handle", "status", "locales", "invitationEnabled",
        "signupEnabled", "metaDataEmail", "jwtEnabled", "twoFactorVerification", "createdAt", "updatedAt",
    }
    assert body["name"] == "Shape app"
    assert re.fullmatch(r"[0-9a-f]{32}", body["appId"])
    assert body["handle"] == "email"
    assert body["status"] == "active"
    assert body["locales"] == ["EN"]
    assert body["jwtEnabled"] is True
    assert body["twoFactorVerification"] == "none"
    assert re.fullmatch(ISO_MILLISECONDS, body["createdAt"])
    claims = jwt.decode(body["appToken"], options={"verify_signature": False})
    assert claims["scope"] == "app"
    assert claims["appId"] == body["appId"]
    public_key = serialization.load_pem_public_key(base64.b64decode(body["appPublicKey"]))
    assert public_key.key_size == 2048

    stored = database[db.APPS].find_one({"appId": body["appId"]})
    assert stored["appPrivateKey"].startswith("gcm1:")
    assert stored["appSecret"].startswith("gcm1:")
    assert "PRIVATE KEY" not in str(stored)
    templates = database[db.EMAIL_TEMPLATES].find({"appId": body["appId"]})
    assert sorted(template["templateName"] for template in templates) == sorted(DEFAULT_TEMPLATES)


def test_create_app_needs_server_secret(api, new_app, database):
    app = new_app()
    count = database[db.APPS].count_documents({})
    missing = api.post("/api/app", json={"name": "No secret"})
    assert missing.status_code == 400
    assert missing.json() == error(400, "invalid admin token")
    with_app_token = api.post("/api/app", headers={"server-secret": app["appToken"]}, json={"name": "Wrong token"})
    assert with_app_token.status_code == 401
    assert with_app_token.json() == error(400, "invalid admin token")
    in_app_header = api.post("/api/app", headers={"app-token": app["appToken"]}, json={"name": "App header"})
    assert in_app_header.status_code == 400
    assert database[db.APPS].count_documents({}) == count


def test_create_app_rejects_missing_and_duplicate_names(api, server_secret, database):
    headers = {"server-secret": server_secret}
    assert api.post("/api/app", headers=headers, json={}).json() == error(403, "missing parameter")
    assert api.post("/api/app", headers=headers, json={"name": "   "}).json() == error(403, "missing parameter")
    assert api.post("/api/app", headers=headers, json={"name": ["list"]}).json() == error(602, "invalid data")
    assert api.post("/api/app", headers=headers, json={"name": "x" * 201}).json() == error(602, "invalid data")

    assert api.post("/api/app", headers=headers, json={"name": "Twice"}).status_code == 200
    duplicate = api.post("/api/app", headers=headers, json={"name": "Twice"})
    assert duplicate.json() == error(602, "invalid data")
    assert database[db.APPS].count_documents({"name": "Twice"}) == 1


def test_read_app_returns_public_parts_only(api, new_app, server_secret):
    app = new_app()
    response = api.get(f"/api/app/appId/{app['appId']}", headers={"server-secret": server_secret})

    assert response.status_code == 200
    body = response.json()
    assert body["appId"] == app["appId"]
    assert body["appToken"] == app["appToken"]
    assert body["appPublicKey"] == app["appPublicKey"]
    assert body["signupFlow"] == "code"
    for hidden in ("appPrivateKey", "appSecret", "_id", "__v", "emailExtensionAPIKey", "TWILIOToken"):
        assert hidden not in body, hidden


def test_read_app_errors(api, new_app, server_secret):
    app = new_app()
    unknown = api.get("/api/app/appId/0123456789abcdef0123456789abcdef", headers={"server-secret": server_secret})
    assert unknown.json() == error(401, "app no longer exist")
    session = register_user(api, app, "reader@example.com")
    as_user = api.get(f"/api/app/appId/{app['appId']}", headers={"access-token": session["access-token"]})
    assert as_user.status_code == 403
    assert as_user.json() == error(400, "invalid admin token")


def test_parallel_creates_of_one_name_make_one_app(api, server_secret, database):
    import concurrent.futures

    def create(_):
        return api.post("/api/app", headers={"server-secret": server_secret}, json={"name": "Race app"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(create, range(4)))

    assert sorted(response.status_code for response in responses) == [200, 400, 400, 400]
    assert database[db.APPS].count_documents({"name": "Race app"}) == 1


def test_create_app_jwt_enabled_must_be_boolean(api, server_secret):
    headers = {"server-secret": server_secret}
    assert api.post("/api/app", headers=headers, json={"name": "Flag app", "jwtEnabled": "yes"}).json() == error(602, "invalid data")
    assert api.post("/api/app", headers=headers, json={"name": "Flag app", "jwtEnabled": 1}).json() == error(602, "invalid data")
    assert api.post("/api/app", headers=headers, json={"name": "Flag app", "jwtEnabled": "true"}).json()["jwtEnabled"] is True
