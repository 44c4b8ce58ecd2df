"""GET /api/app/export and POST /api/app/importDatabase: round trips between servers."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
import zipfile

import bcrypt
import jwt
import pytest
from bson import json_util
from cryptography.hazmat.primitives import serialization

from conftest import reset_caches
from cosync import db, secrets
from cosync.crypto import decrypt_field, encrypt_field
from cosync.keys import generate_app_key_pair
from cosync.services.transfer import user_field_context
from flows import audit_log, digest, error
from operator_helpers import PASSWORD, add_user, login, session

OTHER_ID = "0123456789abcdef0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def other_server(environment, monkeypatch, tmp_path):
    """Switch this process to a fresh database, optionally with new server secrets.

    Return a function that takes `new_keys` and returns the new server secret; every database
    it created is dropped afterwards.
    """
    created = []

    def switch(new_keys: bool = False) -> str:
        name = f"{environment['MONGODB_DATABASE']}_{uuid.uuid4().hex[:6]}"
        created.append(name)
        monkeypatch.setenv("MONGODB_DATABASE", name)
        if new_keys:
            directory = tmp_path / f"secrets-{len(created)}"
            secrets.create_local_secrets(directory)
            monkeypatch.setenv("LOCAL_SECRETS_DIR", str(directory))
        reset_caches()
        from cosync.tokens import issue_server_secret

        return issue_server_secret()

    yield switch
    client = db.get_client()
    for name in created:
        client.drop_database(name)


def encryption_key() -> str:
    return secrets.get_secrets().encryption_key


def configured_app(api, new_app, server_secret, database):
    """Create an app with settings, sealed credentials, users of every kind, a sign-up and an invite."""
    app = new_app(
        signupFlow="code",
        userNamesEnabled=True,
        locales=["EN", "FR"],
        metaData=[{"id": 1, "fieldName": "team", "path": "user_data.team", "required": True, "canEdit": True}],
        metaDataInvite=[{"id": 2, "fieldName": "code", "path": "invite.code", "required": False}],
        realmAppId="realm-app-1",
        googleAppName="Example TOTP",
    )

    app_id = app["appId"]
    key = encryption_key()
    database[db.APPS].update_one({"appId": app_id}, {"$set": {
        "TWILIOAccountSid": encrypt_field(key, "AC-test-sid", f"apps.TWILIOAccountSid:{app_id}"),
        "TWILIOToken": encrypt_field(key, "twilio-token", f"apps.TWILIOToken:{app_id}"),
        "emailExtensionAPIKey": encrypt_field(key, "SG.app-key", f"apps.emailExtensionAPIKey:{app_id}"),
    }})

    metadata = json.dumps({"user_data": {"team": "red"}})
    add_user(api, server_secret, app, "ada@example.com", metaData=metadata, locale="FR")
    add_user(api, server_secret, app, "totp@example.com", metaData=metadata)
    add_user(api, server_secret, app, "paused@example.com", metaData=metadata)
    database[db.USERS].update_one({"appId": app_id, "handle": "totp@example.com"}, {"$set": {
        "userName": "totp_user",
        "twoFactorGoogleVerification": True,
        "googleSecretKey": encrypt_field(key, "JBSWY3DPEHPK3PXP", user_field_context("googleSecretKey", app_id, "totp@example.com")),
    }})
    api.post("/api/app/user", headers={"server-secret": server_secret}, json={"appId": app_id, "handle": "paused@example.com", "status": "suspend"})

    database[db.SIGNUPS].insert_one({"appId": app_id, "handle": "pending@example.com", "status": "pending", "locale": "EN", "metaData": {}})
    database[db.INVITES].insert_one({
        "appId": app_id, "handle": "guest@example.com", "senderHandle": "superuser", "senderUserId": "superuser",
        "code": 123456, "status": "pending", "metaData": {"invite": {"code": "A1"}},
    })
    database[db.EMAIL_TEMPLATES].update_one(
        {"appId": app_id, "templateName": "signUp"}, {"$set": {"subject": "Custom subject", "replyTo": "help@example.com"}}
    )
    return app


def export(api, server_secret, app_id):
    response = api.get("/api/app/export", headers={"server-secret": server_secret}, params={"appId": app_id})
    assert response.status_code == 200, response.text
    return response


def import_file(api, server_secret, content, **params):
    return api.post(
        "/api/app/importDatabase", headers={"server-secret": server_secret, **JSON}, params=params, data=content
    )


def without(document, *names):
    return {key: value for key, value in document.items() if key not in names}


# --- export --------------------------------------------------------------------------------------


def test_export_writes_documented_format(api, new_app, server_secret, database):
    app = configured_app(api, new_app, server_secret, database)

    response = export(api, server_secret, app["appId"])

    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Disposition"] == f'attachment; filename="cosync-app-{app["appId"]}.json"'
    assert response.headers["Cache-Control"] == "no-store"
    document = json.loads(response.content)
    assert document["format"] == "cosync-app-export"
    assert document["formatVersion"] == 1
    assert "$date" in document["exportedAt"]
    assert document["app"]["appId"] == app["appId"]
    assert document["app"]["metaData"][0]["path"] == "user_data.team"
    assert document["app"]["locales"] == ["EN", "FR"]
    assert set(document["secrets"]) == {
        "appPrivateKey", "appPublicKey", "appSecret", "TWILIOAccountSid", "TWILIOToken", "emailExtensionAPIKey",
    }
    assert document["secrets"]["TWILIOToken"] == "twilio-token"
    assert document["secrets"]["appPublicKey"] == app["appPublicKey"]
    serialization.load_pem_private_key(base64.b64decode(document["secrets"]["appPrivateKey"]), password=None)
    assert [user["handle"] for user in document["users"]] == ["ada@example.com", "totp@example.com", "paused@example.com"]
    totp = document["users"][1]
    assert totp["secrets"] == {"googleSecretKey": "JBSWY3DPEHPK3PXP"}
    assert totp["password"].startswith("$argon2id$")
    assert "$oid" in totp["_id"]
    assert "appId" not in totp
    assert sorted(signup["handle"] for signup in document["signups"]) == [
        "ada@example.com", "paused@example.com", "pending@example.com", "totp@example.com",
    ]
    assert document["invites"][0]["code"] == 123456
    assert len(document["emailTemplates"]) == 8
    assert "gcm1:" not in response.text


def test_export_errors(api, new_app, server_secret, database):
    app = new_app()
    headers = {"server-secret": server_secret}
    assert api.get("/api/app/export", headers=headers).json() == error(403, "missing parameter")
    assert api.get("/api/app/export", headers=headers, params={"appId": OTHER_ID}).json() == error(401, "app no longer exist")

    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"TWILIOToken": encrypt_field("another key", "x", "y")}})
    undecryptable = api.get("/api/app/export", headers=headers, params={"appId": app["appId"]})
    assert undecryptable.json() == error(500, "internal server error")


def test_export_is_audited(api, new_app, server_secret, database):
    app = new_app()
    export(api, server_secret, app["appId"])

    record = audit_log(database).find_one({"appId": app["appId"], "action": "exportAppDatabase"})

    assert record["logType"] == "app"
    assert json.loads(record["value"])["users"] == 0


# --- round trips ---------------------------------------------------------------------------------


def test_round_trip_into_fresh_database_is_lossless(api, new_app, server_secret, database, other_server):
    app = configured_app(api, new_app, server_secret, database)
    before = session(api, app["appToken"], "ada@example.com")
    first = export(api, server_secret, app["appId"])

    other_server(new_keys=False)
    response = import_file(api, server_secret, first.content)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["appId"] == app["appId"]
    assert body["appToken"] == app["appToken"]
    assert body["imported"] == {"users": 3, "signups": 4, "invites": 1, "emailTemplates": 8}
    assert body["warnings"] == []
    assert "appPrivateKey" not in body
    second = export(api, server_secret, app["appId"])
    assert without(json.loads(second.content), "exportedAt") == without(json.loads(first.content), "exportedAt")

    assert api.get("/api/appuser/getUser", headers={"access-token": before["access-token"]}).status_code == 200
    after = session(api, app["appToken"], "ada@example.com")
    public_key = serialization.load_pem_public_key(base64.b64decode(app["appPublicKey"]))
    claims = jwt.decode(after["jwt"], public_key, algorithms=["RS256"], audience="realm-app-1")
    assert claims["user_data"] == {"team": "red"}
    assert login(api, app["appToken"], "paused@example.com").json() == error(404, "user account is suspended")


def test_round_trip_to_server_with_other_keys(api, new_app, server_secret, database, other_server):
    app = configured_app(api, new_app, server_secret, database)
    content = export(api, server_secret, app["appId"]).content
    old_key = encryption_key()

    new_secret = other_server(new_keys=True)
    assert encryption_key() != old_key
    response = import_file(api, new_secret, content)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["appId"] == app["appId"]
    assert body["appToken"] != app["appToken"]
    again = json.loads(export(api, new_secret, app["appId"]).content)
    original = json.loads(content)
    assert without(again["secrets"], "appSecret") == without(original["secrets"], "appSecret")
    assert again["users"] == original["users"]
    assert login(api, app["appToken"], "ada@example.com").json() == error(400, "invalid app token")
    tokens = session(api, body["appToken"], "ada@example.com")
    assert api.get("/api/appuser/getUser", headers={"access-token": tokens["access-token"]}).json()["locale"] == "FR"
    public_key = serialization.load_pem_public_key(base64.b64decode(app["appPublicKey"]))
    jwt.decode(tokens["jwt"], public_key, algorithms=["RS256"], audience="realm-app-1")

    stored = db.collection(db.APPS).find_one({"appId": app["appId"]})
    assert decrypt_field(encryption_key(), stored["TWILIOToken"], f"apps.TWILIOToken:{app['appId']}") == "twilio-token"
    user = db.collection(db.USERS).find_one({"appId": app["appId"], "handle": "totp@example.com"})
    context = user_field_context("googleSecretKey", app["appId"], "totp@example.com")
    assert decrypt_field(encryption_key(), user["googleSecretKey"], context) == "JBSWY3DPEHPK3PXP"


def test_round_trip_keeps_rotated_keys_published(api, new_app, server_secret, database, other_server):
    app = new_app()
    add_user(api, server_secret, app, "rotated@example.com")
    old_jwt = session(api, app["appToken"], "rotated@example.com")["jwt"]
    rotated = api.post("/api/app/rotateAppKey", headers={"server-secret": server_secret}, json={"appId": app["appId"]})
    assert rotated.status_code == 200, rotated.text
    jwks_before = api.get(f"/api/apps/{app['appId']}/jwks.json").json()
    content = export(api, server_secret, app["appId"]).content

    new_secret = other_server(new_keys=True)
    response = import_file(api, new_secret, content)

    assert response.status_code == 200, response.text
    assert response.json()["appPublicKey"] == rotated.json()["appPublicKey"]
    jwks_after = api.get(f"/api/apps/{app['appId']}/jwks.json").json()
    assert jwks_after == jwks_before
    assert len(jwks_after["keys"]) == 2
    old_kid = jwt.get_unverified_header(old_jwt)["kid"]
    assert old_kid in [key["kid"] for key in jwks_after["keys"]]
    new_jwt = session(api, response.json()["appToken"], "rotated@example.com")["jwt"]
    assert jwt.get_unverified_header(new_jwt)["kid"] == rotated.json()["kid"]


def test_round_trip_keeps_totp_login_working(api, new_app, server_secret, other_server):
    from two_factor_helpers import complete, enable_google, totp_code

    app = new_app(twoFactorVerification="google")
    add_user(api, server_secret, app, "second@example.com")
    secret = enable_google(api, session(api, app["appToken"], "second@example.com")["access-token"])
    content = export(api, server_secret, app["appId"]).content

    new_secret = other_server(new_keys=True)
    imported = import_file(api, new_secret, content).json()
    moved = {**app, "appToken": imported["appToken"]}

    started = login(api, moved["appToken"], "second@example.com")
    assert list(started.json()) == ["login-token"]
    finished = complete(api, moved, started.json()["login-token"], totp_code(secret))
    assert finished.status_code == 200, finished.text
    assert sorted(finished.json()) == ["access-token", "jwt"]


def test_import_refuses_existing_app_unless_overwrite(api, new_app, server_secret, database):
    app = new_app()
    add_user(api, server_secret, app, "kept@example.com")
    content = export(api, server_secret, app["appId"]).content
    add_user(api, server_secret, app, "later@example.com")

    refused = import_file(api, server_secret, content)

    assert refused.json() == error(602, "invalid data")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 2
    replaced = import_file(api, server_secret, content, overwrite="true")
    assert replaced.status_code == 200, replaced.text
    handles = [user["handle"] for user in database[db.USERS].find({"appId": app["appId"]})]
    assert handles == ["kept@example.com"]
    assert login(api, app["appToken"], "kept@example.com").status_code == 200


def test_import_refuses_name_of_another_app(api, new_app, server_secret, database, other_server):
    app = new_app()
    content = export(api, server_secret, app["appId"]).content
    other_server()
    taken = new_app()
    document = json.loads(content)
    document["app"]["name"] = taken["name"]
    renamed = json.dumps(document).encode()

    clash = import_file(api, server_secret, renamed, overwrite="true")
    assert clash.json() == error(602, "invalid data")
    assert db.collection(db.APPS).count_documents({}) == 1

    response = import_file(api, server_secret, renamed, appName="Imported copy")
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Imported copy"


def test_import_accepts_multipart_form(api, new_app, server_secret, other_server):
    app = new_app()
    content = export(api, server_secret, app["appId"]).content
    other_server()

    response = api.post(
        "/api/app/importDatabase",
        headers={"server-secret": server_secret},
        files={"file": ("export.json", content, "application/json")},
        data={"appName": "From a form"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "From a form"
    assert response.json()["appId"] == app["appId"]


# --- malformed imports ---------------------------------------------------------------------------


def test_import_rejects_malformed_files(api, new_app, server_secret, database, other_server):
    app = new_app()
    add_user(api, server_secret, app, "one@example.com")
    valid = json_util.loads(export(api, server_secret, app["appId"]).content)
    other_server()
    other_private, _ = generate_app_key_pair()

    def changed(change):
        document = json_util.loads(json_util.dumps(valid))
        change(document)
        return json_util.dumps(document).encode()

    cases = {
        "not json": b"{broken",
        "array": b"[]",
        "other format": changed(lambda d: d.update(format="something")),
        "newer version": changed(lambda d: d.update(formatVersion=2)),
        "bad app id": changed(lambda d: d["app"].update(appId="../x")),
        "users not a list": changed(lambda d: d.update(users={"a": 1})),
        "duplicate handle": changed(lambda d: d["users"].append(dict(d["users"][0], _id=None))),
        "user without handle": changed(lambda d: d["users"][0].pop("handle")),
        "dollar field": changed(lambda d: d["users"][0].update({"$where": "1"})),
        "regex value": changed(lambda d: d["users"][0].update(note={"$regex": "a", "$options": ""})),
        "encrypted value": changed(lambda d: d["users"][0].update(googleSecretKey="gcm1:AAAA")),
        "secret in app": changed(lambda d: d["app"].update(TWILIOToken="plain")),
        "mismatched keys": changed(lambda d: d["secrets"].update(appPrivateKey=other_private)),
        "broken key": changed(lambda d: d["secrets"].update(appPrivateKey="bm90IGEga2V5")),
        "public key only": changed(lambda d: d["secrets"].pop("appPrivateKey")),
        "flag of wrong type": changed(lambda d: d["app"].update(signupEnabled="yes")),
        "token version text": changed(lambda d: d["users"][0].update(tokenVersion="1")),
        "template without body": changed(lambda d: d["emailTemplates"][0].pop("htmlTemplate")),
        "bad object id": changed(lambda d: d["users"][0].update(_id="X")).replace(b'"X"', b'{"$oid": "zz"}'),
        "bad date": changed(lambda d: d["users"][0].update(createdAt="X")).replace(b'"X"', b'{"$date": "soon"}'),
        "date out of range": changed(lambda d: d["users"][0].update(createdAt="X")).replace(b'"X"', b'{"$date": 1e400}'),
    }
    for name, content in cases.items():
        response = import_file(api, server_secret, content)
        assert response.status_code == 400, (name, response.text)
        assert response.json() == error(602, "invalid data"), name
    nameless = import_file(api, server_secret, changed(lambda d: d["app"].pop("name")))
    assert nameless.json() == error(403, "missing parameter")
    for collection in (db.APPS, db.USERS, db.SIGNUPS, db.EMAIL_TEMPLATES):
        assert db.collection(collection).count_documents({}) == 0, collection


def test_import_rejects_ids_of_another_app(api, new_app, server_secret, database):
    original = new_app()
    add_user(api, server_secret, original, "original@example.com")
    target = new_app()
    add_user(api, server_secret, target, "target@example.com")
    document = json.loads(export(api, server_secret, original["appId"]).content)
    document["app"]["appId"] = target["appId"]

    # The records keep the `_id` of the original app's records; nothing may be deleted first.
    for overwrite in ("false", "true"):
        response = import_file(api, server_secret, json.dumps(document).encode(), overwrite=overwrite, appName="Renamed")

        assert response.status_code == 400
        assert response.json() == error(602, "invalid data")
    assert database[db.APPS].count_documents({"appId": target["appId"]}) == 1
    assert login(api, target["appToken"], "target@example.com").status_code == 200
    assert login(api, original["appToken"], "original@example.com").status_code == 200


def test_import_undoes_failed_write(api, new_app, server_secret, database):
    app = new_app()
    add_user(api, server_secret, app, "original@example.com")
    document = json.loads(export(api, server_secret, app["appId"]).content)
    copy_id = uuid.uuid4().hex
    document["app"].update(appId=copy_id, name="Copy with the same ids")
    for section in ("users", "signups", "emailTemplates"):
        for record in document[section]:
            record.pop("_id", None)
    duplicate_id = {"$oid": "65f1c0ffee0123456789abcd"}
    document["invites"] = [
        {"_id": duplicate_id, "handle": "first@example.com", "status": "pending"},
        {"_id": duplicate_id, "handle": "second@example.com", "status": "pending"},
    ]

    # The second invite's `_id` repeats the first one's, so its insert fails.
    response = import_file(api, server_secret, json.dumps(document).encode())

    assert response.status_code == 400
    assert response.json() == error(500, "internal server error")
    for collection in (db.APPS, db.USERS, db.SIGNUPS, db.EMAIL_TEMPLATES):
        assert database[collection].count_documents({"appId": copy_id}) == 0, collection
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 1
    assert login(api, app["appToken"], "original@example.com").status_code == 200


def test_import_rejects_bad_requests(api, server_secret, monkeypatch):
    assert import_file(api, server_secret, b"").json() == error(403, "missing parameter")
    assert import_file(api, server_secret, b"{}", overwrite="maybe").json() == error(602, "invalid data")
    form = api.post("/api/app/importDatabase", headers={"server-secret": server_secret}, files={"other": ("x", b"{}")})
    assert form.json() == error(403, "missing parameter")

    monkeypatch.setenv("MAX_IMPORT_BYTES", "2048")
    reset_caches()
    too_large = import_file(api, server_secret, b"{" + b" " * 4096 + b"}")
    assert too_large.status_code == 413
    assert too_large.json() == error(602, "invalid data")


# --- CosyncJWT export ZIP ------------------------------------------------------------------------

JS_DATE = "Tue Aug 01 2023 10:00:00 GMT+0000 (Coordinated Universal Time)"

APP_COLUMNS = [
    "name", "status", "jwtEnabled", "appPrivateKey", "appPublicKey", "appToken", "appSecret", "handle",
    "invitationEnabled", "signupEnabled", "signupFlow", "twoFactorVerification", "emailExtension",
    "emailExtensionAPIKey", "emailExtensionSenderEmail", "TWILIOAccountSid", "TWILIOToken", "TWILIOPhoneNumber",
    "googleAppName", "maxLoginAttempts", "passwordFilter", "passwordMinLength", "passwordMinUpper",
    "passwordMinLower", "passwordMinDigit", "passwordMinSpecial", "userJWTExpiration", "realmAppId", "appData",
    "metaDataInvite", "metaData", "metaDataEmail", "locales", "createdAt", "updatedAt",
]
USER_COLUMNS = [
    "handle", "password", "status", "appId", "twoFactorPhoneVerification", "twoFactorGoogleVerification",
    "googleSecretKey", "twoFactorCode", "phone", "phoneVerified", "phoneCode", "metaData", "lastLogin", "locale",
    "createdAt", "updatedAt",
]
SIGNUP_COLUMNS = ["handle", "password", "status", "appId", "code", "locale", "metaData", "createdAt", "updatedAt"]
INVITE_COLUMNS = ["handle", "senderHandle", "senderUserId", "code", "status", "appId", "metaData", "createdAt", "updatedAt"]
TEMPLATE_COLUMNS = [
    "appId", "subject", "replyTo", "templateName", "htmlTemplate", "locale", "htmlTemplate", "createdAt", "updatedAt",
]


def csv_text(columns, rows):
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return output.getvalue()


def bcrypt_of(password):
    return bcrypt.hashpw(digest(password).encode(), bcrypt.gensalt(rounds=4)).decode()


def reference_zip(private_key64, public_key64, **replacements):
    """Build a CosyncJWT export ZIP as its export route describes it."""
    old_app_id = "f" * 32
    app_row = {
        "name": "Legacy app", "status": "active", "jwtEnabled": "true", "appPrivateKey": private_key64,
        "appPublicKey": public_key64, "appToken": "eyJ.old.token", "appSecret": "eyJ.old.secret", "handle": "email",
        "invitationEnabled": "true", "signupEnabled": "false", "signupFlow": "code", "twoFactorVerification": "none",
        "emailExtension": "false", "TWILIOToken": "legacy-twilio", "maxLoginAttempts": "5", "passwordFilter": "false",
        "passwordMinLength": "8", "passwordMinUpper": "0", "passwordMinLower": "0", "passwordMinDigit": "1",
        "passwordMinSpecial": "0", "userJWTExpiration": "12", "appData": "[object Object]", "metaDataInvite": "",
        "metaData": "[object Object]", "metaDataEmail": "true", "locales": "EN,FR", "createdAt": JS_DATE,
        "updatedAt": "Wed Aug 02 2023 12:30:15 GMT+0200 (Central European Summer Time)",
    }

    users = [
        {"handle": "old@example.com", "password": bcrypt_of(PASSWORD), "status": "active", "appId": old_app_id,
         "twoFactorPhoneVerification": "false", "twoFactorGoogleVerification": "true", "googleSecretKey": "LEGACYSEED",
         "phoneVerified": "false", "phoneCode": "0", "metaData": "[object Object]", "lastLogin": JS_DATE, "locale": "FR",
         "createdAt": JS_DATE, "updatedAt": JS_DATE},
        {"handle": "gone@example.com", "password": bcrypt_of(PASSWORD), "status": "suspend", "appId": old_app_id,
         "createdAt": JS_DATE, "updatedAt": JS_DATE},
    ]
    signups = [{"handle": "old@example.com", "password": users[0]["password"], "status": "verified", "appId": old_app_id,
                "code": "123456", "locale": "FR", "metaData": "[object Object]", "createdAt": JS_DATE, "updatedAt": JS_DATE}]
    invites = [{"handle": "friend@example.com", "senderHandle": "superuser", "senderUserId": "superuser", "code": "654321",
                "status": "pending", "appId": old_app_id, "metaData": "", "createdAt": JS_DATE, "updatedAt": JS_DATE}]
    templates = [{"appId": old_app_id, "subject": "Hi %APP_NAME%", "replyTo": "", "templateName": "signUp",
                  "htmlTemplate": "<p>Code, \"quoted\":\n%CODE%</p>", "locale": "EN", "createdAt": JS_DATE, "updatedAt": JS_DATE}]

    files = {
        "app-collection.csv": csv_text(APP_COLUMNS, [app_row]),
        "user-collection.csv": csv_text(USER_COLUMNS, users),
        "signup-collection.csv": csv_text(SIGNUP_COLUMNS, signups),
        "invite-collection.csv": csv_text(INVITE_COLUMNS, invites),
        "email-template-collection.csv": csv_text(TEMPLATE_COLUMNS, templates),
    }
    files.update(replacements)
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            if text is not None:
                archive.writestr(name, text)
    return output.getvalue()


def upload_zip(api, server_secret, content, **fields):
    return api.post(
        "/api/app/importDatabase",
        headers={"server-secret": server_secret},
        files={"file": ("export.zip", content, "application/zip")},
        data=fields,
    )


def test_reference_zip_import_keeps_users_and_keys(api, server_secret, database):
    private_key64, public_key64 = generate_app_key_pair()

    response = upload_zip(api, server_secret, reference_zip(private_key64, public_key64), appName="Migrated app")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Migrated app"
    assert body["appId"] != "f" * 32
    assert body["appPublicKey"] == public_key64
    assert body["imported"] == {"users": 2, "signups": 1, "invites": 1, "emailTemplates": 1}
    assert body["warnings"] == [
        "app metaData is not in the CosyncJWT export (it writes [object Object]); set it again",
        "metaData of 1 users is not in the CosyncJWT export; it is empty now",
        "metaData of 1 signups is not in the CosyncJWT export; it is empty now",
    ]
    app_id = body["appId"]
    stored_app = database[db.APPS].find_one({"appId": app_id})
    assert stored_app["locales"] == ["EN", "FR"]
    assert stored_app["signupEnabled"] is False
    assert stored_app["passwordMinLength"] == 8
    assert stored_app["maxLoginAttempts"] == "5"
    assert stored_app["metaData"] == []
    assert stored_app["updatedAt"].isoformat() == "2023-08-02T10:30:15+00:00"
    assert decrypt_field(encryption_key(), stored_app["TWILIOToken"], f"apps.TWILIOToken:{app_id}") == "legacy-twilio"

    tokens = session(api, body["appToken"], "old@example.com")
    public_key = serialization.load_pem_public_key(base64.b64decode(public_key64))
    claims = jwt.decode(tokens["jwt"], public_key, algorithms=["RS256"], audience="none")
    assert claims["email"] == "old@example.com"
    assert login(api, body["appToken"], "gone@example.com").json() == error(404, "user account is suspended")
    user = database[db.USERS].find_one({"appId": app_id, "handle": "old@example.com"})
    assert user["password"].startswith("$argon2id$")
    assert user["lastLogin"] > user["createdAt"]
    context = user_field_context("googleSecretKey", app_id, "old@example.com")
    assert decrypt_field(encryption_key(), user["googleSecretKey"], context) == "LEGACYSEED"
    assert user["twoFactorGoogleVerification"] is True
    assert user["phoneCode"] == 0
    invite = database[db.INVITES].find_one({"appId": app_id})
    assert invite["code"] == 654321
    template = database[db.EMAIL_TEMPLATES].find_one({"appId": app_id})
    assert template["htmlTemplate"] == "<p>Code, \"quoted\":\n%CODE%</p>"


def test_reference_zip_uses_name_from_file(api, server_secret):
    private_key64, public_key64 = generate_app_key_pair()

    response = upload_zip(api, server_secret, reference_zip(private_key64, public_key64))

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Legacy app"


def test_reference_zip_must_be_well_formed(api, server_secret, database):
    private_key64, public_key64 = generate_app_key_pair()
    bad_row = csv_text(USER_COLUMNS, [{"handle": "x@example.com", "twoFactorPhoneVerification": "yes"}])
    bad_date = csv_text(USER_COLUMNS, [{"handle": "x@example.com", "createdAt": "yesterday"}])
    short_row = "handle,password\nx@example.com\n"
    cases = {
        "missing file": reference_zip(private_key64, public_key64, **{"invite-collection.csv": None}),
        "bad boolean": reference_zip(private_key64, public_key64, **{"user-collection.csv": bad_row}),
        "bad date": reference_zip(private_key64, public_key64, **{"user-collection.csv": bad_date}),
        "short row": reference_zip(private_key64, public_key64, **{"user-collection.csv": short_row}),
        "no app row": reference_zip(private_key64, public_key64, **{"app-collection.csv": "name,status\n"}),
        "truncated archive": reference_zip(private_key64, public_key64)[:200],
    }
    for name, content in cases.items():
        response = upload_zip(api, server_secret, content, appName=f"Broken {name}")
        assert response.status_code == 400, (name, response.text)
        assert response.json() == error(602, "invalid data"), name
    assert database[db.APPS].count_documents({"name": {"$regex": "^Broken"}}) == 0


def test_reference_zip_entries_never_touch_disk(api, server_secret, tmp_path, monkeypatch):
    private_key64, public_key64 = generate_app_key_pair()
    monkeypatch.chdir(tmp_path)
    content = reference_zip(private_key64, public_key64, **{"../escaped.csv": "x", "/tmp/absolute.csv": "y"})

    response = upload_zip(api, server_secret, content, appName="Slip app")

    assert response.status_code == 200, response.text
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escaped.csv").exists()
