"""Every operator route rejects callers without the server secret, and changes nothing."""

from __future__ import annotations

import jwt
import pytest

from cosync import db
from flows import audit_log, error, register_user

# (method, path, HTTP status CosyncJWT gives a caller without the server scope)
OPERATOR_ROUTES = [
    ("POST", "/api/app", 400),
    ("GET", "/api/app/connection", 403),
    ("GET", "/api/app/allApps", 403),
    ("GET", "/api/app/appId/{appId}", 403),
    ("GET", "/api/app/search", 403),
    ("POST", "/api/app/update", 400),
    ("POST", "/api/app/deleteMetadata", 400),
    ("DELETE", "/api/app/{appId}", 400),
    ("POST", "/api/app/initCosyncJWT", 403),
    ("POST", "/api/app/reinitCosyncJWT", 403),
    ("POST", "/api/app/removeCosyncJWT", 403),
    ("POST", "/api/app/initCosyncEngine", 403),
    ("POST", "/api/app/reinitCosyncEngine", 403),
    ("POST", "/api/app/removeCosyncEngine", 403),
    ("GET", "/api/app/getCosyncVersions", 403),
    ("POST", "/api/app/saveUserSchema", 403),
    ("POST", "/api/app/updateAppSetting", 403),
    ("POST", "/api/app/testEmailExtension", 403),
    ("GET", "/api/app/logs", 403),
    ("GET", "/api/app/stat", 403),
    ("GET", "/api/app/emailTemplates", 403),
    ("POST", "/api/app/addRemoveAppLocale", 403),
    ("POST", "/api/app/updateEmailTemplate", 403),
    ("POST", "/api/app/updateAppMetaData", 403),
    ("POST", "/api/app/updateAppInviteMetaData", 403),
    ("POST", "/api/app/reset", 403),
    ("POST", "/api/app/remoteNotification", 403),
    ("POST", "/api/app/patchAppLocales", 403),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in OPERATOR_ROUTES]


@pytest.fixture(scope="module")
def target(api_server, server_environment, module_database):
    """An app with one user, and the tokens a non-operator caller could hold."""
    from conftest import Api, reset_caches
    from cosync.tokens import issue_server_secret

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**server_environment, "MONGODB_DATABASE": module_database}.items():
            patch.setenv(name, value)
        reset_caches()
        api = Api(api_server)
        secret = issue_server_secret()
        app = api.post("/api/app", headers={"server-secret": secret}, json={"name": "Auth target"}).json()
        session = register_user(api, app, "auth.target@example.com")
    reset_caches()
    return {"app": app, "access_token": session["access-token"]}


def _call(api, method, path, app, headers):
    url = path.replace("{appId}", app["appId"])
    body = {
        "appId": app["appId"], "name": "Changed", "setting": "signup", "signupEnabled": False,
        "locales": ["EN", "FR"], "metaData": [], "type": "metaData", "index": "0",
    }
    if method == "GET":
        return api.get(url, headers=headers, params={"appId": app["appId"], "name": "Auth"})
    if method == "DELETE":
        return api.session.delete(api.base_url + url, headers=headers, timeout=30)
    return api.post(url, headers=headers, json=body)


def _snapshot(database, app_id):
    return {
        "apps": database[db.APPS].count_documents({}),
        "app": database[db.APPS].find_one({"appId": app_id}, {"_id": 0}),
        "users": database[db.USERS].count_documents({"appId": app_id}),
        "templates": database[db.EMAIL_TEMPLATES].count_documents({"appId": app_id}),
        "operator logs": audit_log(database).count_documents({"appId": app_id, "logType": "app"}),
    }


@pytest.mark.parametrize("method, path, status", OPERATOR_ROUTES, ids=ROUTE_IDS)
def test_route_rejects_missing_secret(api, target, database, method, path, status):
    before = _snapshot(database, target["app"]["appId"])
    response = _call(api, method, path, target["app"], {})
    assert response.status_code == status
    assert response.json() == error(400, "invalid admin token")
    assert _snapshot(database, target["app"]["appId"]) == before


@pytest.mark.parametrize("method, path, status", OPERATOR_ROUTES, ids=ROUTE_IDS)
def test_route_rejects_app_token(api, target, database, method, path, status):
    before = _snapshot(database, target["app"]["appId"])
    app_token = target["app"]["appToken"]
    in_app_header = _call(api, method, path, target["app"], {"app-token": app_token})
    assert in_app_header.status_code == status
    assert in_app_header.json() == error(400, "invalid admin token")
    in_secret_header = _call(api, method, path, target["app"], {"server-secret": app_token})
    assert in_secret_header.status_code == 401
    assert in_secret_header.json() == error(400, "invalid admin token")
    assert _snapshot(database, target["app"]["appId"]) == before


@pytest.mark.parametrize("method, path, status", OPERATOR_ROUTES, ids=ROUTE_IDS)
def test_route_rejects_access_token(api, target, database, method, path, status):
    before = _snapshot(database, target["app"]["appId"])
    access_token = target["access_token"]
    response = _call(api, method, path, target["app"], {"access-token": access_token})
    assert response.status_code == status
    assert response.json() == error(400, "invalid admin token")
    in_secret_header = _call(api, method, path, target["app"], {"server-secret": access_token})
    assert in_secret_header.status_code == 401
    assert in_secret_header.json() == error(400, "invalid admin token")
    assert _snapshot(database, target["app"]["appId"]) == before


@pytest.mark.parametrize("method, path, status", OPERATOR_ROUTES, ids=ROUTE_IDS)
def test_route_rejects_forged_secret(api, target, database, method, path, status):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    before = _snapshot(database, target["app"]["appId"])
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    forged = jwt.encode({"name": "CosyncJWT", "scope": "server"}, pem, algorithm="RS256")
    for token in (forged, "not a token", ""):
        response = _call(api, method, path, target["app"], {"server-secret": token})
        assert response.status_code == 401, token
        assert response.json() == error(400, "invalid admin token")
    assert _snapshot(database, target["app"]["appId"]) == before
