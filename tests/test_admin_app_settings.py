"""Operator routes that change an app: update, updateAppSetting and the metadata definitions."""

from __future__ import annotations

import uuid

import pytest

from cosync import db
from cosync.crypto import decrypt_field
from cosync.secrets import get_secrets
from flows import audit_log, error
from admin_helpers import audit_records, operator  # noqa: F401 (fixture)

INVALID_DATA = error(602, "invalid data")
MISSING_PARAM = error(403, "missing parameter")
APP_NOT_FOUND = error(401, "app no longer exist")
UNKNOWN_APP_ID = "0123456789abcdef0123456789abcdef"
TWILIO = {"TWILIOAccountSid": "AC" + "0a" * 16, "TWILIOToken": "f" * 32, "TWILIOPhoneNumber": "+15551234567"}


@pytest.fixture
def app(new_app):
    return new_app()


def _stored(database, app):
    return database[db.APPS].find_one({"appId": app["appId"]})


def _assert_rejected(response, body=INVALID_DATA):
    assert response.status_code == 400, response.text
    assert response.json() == body


# POST /api/app/update


def test_update_changes_allowed_fields(operator, app, database):
    response = operator.post("/update", {
        "appId": app["appId"], "signupEnabled": False, "signupFlow": "none", "passwordMinLength": 8,
        "userJWTExpiration": "48", "maxLoginAttempts": 5, "realmAppId": "my-realm",
    })

    assert response.status_code == 200
    body = response.json()
    assert body["signupEnabled"] is False
    assert body["signupFlow"] == "none"
    assert body["passwordMinLength"] == 8
    assert body["userJWTExpiration"] == 48
    assert body["maxLoginAttempts"] == "5"
    assert body["realmAppId"] == "my-realm"
    for hidden in ("appPrivateKey", "appSecret", "_id", "__v"):
        assert hidden not in body
    stored = _stored(database, app)
    assert stored["signupEnabled"] is False
    assert stored["userJWTExpiration"] == 48


def test_update_reads_form_strings(operator, app, database):
    response = operator.post_form("/update", {"appId": app["appId"], "invitationEnabled": "false", "passwordFilter": "true"})

    assert response.status_code == 200
    assert _stored(database, app)["invitationEnabled"] is False
    assert _stored(database, app)["passwordFilter"] is True


@pytest.mark.parametrize("field", ["appToken", "appSecret", "appPrivateKey", "appPublicKey", "_id", "__v", "appData",
                                   "createdAt", "developerUid", "unknownField"])
def test_update_rejects_keys_tokens_and_ids(operator, app, database, field):
    before = _stored(database, app)
    _assert_rejected(operator.post("/update", {"appId": app["appId"], field: "x", "signupEnabled": False}))
    assert _stored(database, app) == before


@pytest.mark.parametrize("field", ["status", "twoFactorVerification", "TWILIOToken", "emailExtensionAPIKey", "locales"])
def test_update_rejects_fields_changed_elsewhere(operator, app, database, field):
    before = _stored(database, app)
    _assert_rejected(operator.post("/update", {"appId": app["appId"], field: "active"}))
    assert _stored(database, app) == before


@pytest.mark.parametrize("field, value", [
    ("signupEnabled", "yes"), ("signupEnabled", 1), ("signupFlow", "email"), ("passwordMinLength", -1),
    ("passwordMinLength", 1.5), ("userJWTExpiration", "forever"), ("type", "free"), ("name", ""),
    ("emailExtensionSenderEmail", "not-an-address"), ("realmAppId", "x" * 201), ("signupEnabled", None),
])
def test_update_rejects_bad_values_and_changes_nothing(operator, app, database, field, value):
    before = _stored(database, app)
    response = operator.post("/update", {"appId": app["appId"], "invitationEnabled": False, field: value})
    assert response.status_code == 400
    assert response.json() in (INVALID_DATA, MISSING_PARAM)
    assert _stored(database, app) == before


def test_update_renames_and_keeps_names_unique(operator, new_app, database):
    first = new_app()
    second = new_app()
    new_name = f"Renamed {uuid.uuid4().hex[:6]}"

    assert operator.post("/update", {"appId": first["appId"], "name": new_name}).json()["name"] == new_name
    assert operator.post("/update", {"appId": first["appId"], "name": new_name}).status_code == 200
    _assert_rejected(operator.post("/update", {"appId": second["appId"], "name": new_name}))
    assert _stored(database, second)["name"] == second["name"]


def test_update_errors(operator, app):
    _assert_rejected(operator.post("/update", {"signupEnabled": False}), MISSING_PARAM)
    _assert_rejected(operator.post("/update", {"appId": UNKNOWN_APP_ID, "signupEnabled": False}), APP_NOT_FOUND)
    _assert_rejected(operator.post("/update", {"appId": app["appId"]}), MISSING_PARAM)


def test_update_appends_metadata_definitions(operator, app, database):
    first = [{"id": 1, "path": "profile.name", "required": True, "fieldName": "name"}]
    second = '[{"id": 2, "path": "profile.team", "fieldName": "team", "canEdit": true}]'

    operator.post("/update", {"appId": app["appId"], "metaData": first})
    response = operator.post("/update", {"appId": app["appId"], "metaData": second})

    assert response.status_code == 200
    assert response.json()["metaData"] == [
        {"id": 1, "path": "profile.name", "required": True, "fieldName": "name", "canEdit": False},
        {"id": 2, "path": "profile.team", "required": False, "fieldName": "team", "canEdit": True},
    ]
    before = _stored(database, app)
    _assert_rejected(operator.post("/update", {"appId": app["appId"], "metaData": [{"path": "profile.name"}]}))
    _assert_rejected(operator.post("/update", {"appId": app["appId"], "metaData": "not json"}))
    assert _stored(database, app) == before


def test_update_records_field_names_only(operator, app, database):
    operator.post("/update", {"appId": app["appId"], "emailExtensionSenderEmail": "ops@example.com", "signupEnabled": False})
    _assert_rejected(operator.post("/update", {"appId": app["appId"], "appToken": "stolen"}))

    records = audit_records(database, app["appId"], "update")
    assert [record["status"] for record in records] == ["success", "error"]
    assert records[0]["value"] == {"fields": ["emailExtensionSenderEmail", "signupEnabled"]}
    assert records[1]["value"] == {"fields": ["appToken"], "code": 602}
    assert "stolen" not in str(records)


# POST /api/app/updateAppSetting


@pytest.mark.parametrize("setting, field, value", [
    ("invite", "invitationEnabled", False),
    ("jwtEnabled", "jwtEnabled", True),
    ("userNamesEnabled", "userNamesEnabled", True),
    ("anonLogin", "anonymousLoginEnabled", True),
    ("signup", "signupEnabled", False),
    ("passwordFilter", "passwordFilter", True),
    ("metaDataEmail", "metaDataEmail", False),
    ("emailExtension", "emailExtension", True),
    ("appleLogin", "appleLoginEnabled", True),
    ("googleLogin", "googleLoginEnabled", True),
    ("signupFlow", "signupFlow", "link"),
    ("maxUsers", "maxUsers", 100),
    ("userJWTExpiration", "userJWTExpiration", 2),
    ("realmAppId", "realmAppId", "realm-app"),
    ("appleBundleId", "appleBundleId", "com.example.app,com.example.other"),
    ("googleClientId", "googleClientId", "123.apps.googleusercontent.com"),
])
def test_setting_sets_its_field(operator, app, database, setting, field, value):
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": setting, field: value})

    assert response.status_code == 200, response.text
    assert response.json()[field] == value
    assert _stored(database, app)[field] == value
    again = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": setting, field: value})
    assert again.status_code == 200


@pytest.mark.parametrize("setting, body", [
    ("status", {"status": "deleted"}),
    ("status", {}),
    ("invite", {"invitationEnabled": "maybe"}),
    ("invite", {}),
    ("signupFlow", {"signupFlow": "magic"}),
    ("twoFactorVerification", {"twoFactorVerification": "sms"}),
    ("twoFactorVerification", {"twoFactorVerification": "phone"}),
    ("twoFactorVerification", {"twoFactorVerification": "phone", **TWILIO, "TWILIOPhoneNumber": "555"}),
    ("twoFactorVerification", {"twoFactorVerification": "phone", **TWILIO, "TWILIOAccountSid": "XY1"}),
    ("maxUsers", {"maxUsers": -5}),
    ("userJWTExpiration", {"userJWTExpiration": "soon"}),
    ("appleBundleId", {"appleBundleId": ""}),
    ("passwordSetting", {}),
    ("passwordSetting", {"passwordMinLength": 500}),
    ("emailExtensionAPIKey", {"emailExtensionAPIKey": "has space"}),
    ("emailExtensionAPIKey", {"emailExtensionSenderEmail": "nope"}),
    ("noSuchSetting", {}),
])
def test_setting_rejects_bad_values(operator, app, database, setting, body):
    before = _stored(database, app)
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": setting, **body})
    assert response.status_code == 400
    assert response.json() in (INVALID_DATA, MISSING_PARAM)
    assert _stored(database, app) == before


def test_setting_status_accepts_known_values(operator, app, api, database):
    for status in ("inactive", "migrated", "active"):
        response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "status", "status": status})
        assert response.json()["status"] == status
    operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "status", "status": "inactive"})
    suspended = api.post("/api/appuser/signup", headers={"app-token": app["appToken"]}, json={"handle": "a@example.com"})
    assert suspended.json() == error(402, "app is suspended")


def test_setting_password_rules_keep_omitted_ones(operator, app, database):
    operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "passwordSetting", "passwordMinUpper": 2})
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "passwordSetting", "passwordMinLength": 10})

    assert response.json()["passwordMinLength"] == 10
    assert response.json()["passwordMinUpper"] == 2


def test_setting_phone_two_factor_encrypts_twilio(operator, app, database):
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "twoFactorVerification",
                                                   "twoFactorVerification": "phone", **TWILIO})

    assert response.status_code == 200
    body = response.json()
    assert body["twoFactorVerification"] == "phone"
    for field in TWILIO:
        assert field not in body
    stored = _stored(database, app)
    key = get_secrets().encryption_key
    for field, value in TWILIO.items():
        assert stored[field] != value
        assert decrypt_field(key, stored[field], f"apps.{field}:{app['appId']}") == value
    again = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "twoFactorVerification",
                                                "twoFactorVerification": "phone"})
    assert again.status_code == 200


def test_setting_google_two_factor_sets_issuer(operator, app, database):
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "twoFactorVerification",
                                                   "twoFactorVerification": "google", "googleAPP_NAME": "Acme"})
    assert response.json()["twoFactorVerification"] == "google"
    assert response.json()["googleAppName"] == "Acme"


def test_setting_email_key_is_encrypted_and_hidden(operator, app, database):
    response = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "emailExtensionAPIKey",
                                                   "emailExtensionAPIKey": "SG.abc.def", "emailExtensionSenderEmail": "ops@example.com"})

    assert response.status_code == 200
    assert "emailExtensionAPIKey" not in response.json()
    assert response.json()["emailExtensionSenderEmail"] == "ops@example.com"
    stored = _stored(database, app)
    assert decrypt_field(get_secrets().encryption_key, stored["emailExtensionAPIKey"],
                         f"apps.emailExtensionAPIKey:{app['appId']}") == "SG.abc.def"
    cleared = operator.post("/updateAppSetting", {"appId": app["appId"], "setting": "emailExtensionAPIKey", "emailExtensionAPIKey": ""})
    assert cleared.status_code == 200
    assert "emailExtensionAPIKey" not in _stored(database, app)
    records = audit_records(database, app["appId"], "updateAppSetting")
    assert [record["value"] for record in records] == [{"setting": "emailExtensionAPIKey"}] * 2
    assert "SG.abc.def" not in str(list(audit_log(database).find({"appId": app["appId"]})))


def test_setting_errors(operator):
    _assert_rejected(operator.post("/updateAppSetting", {"setting": "signup", "signupEnabled": True}), MISSING_PARAM)
    _assert_rejected(operator.post("/updateAppSetting", {"appId": UNKNOWN_APP_ID, "setting": "signup"}), APP_NOT_FOUND)


# Metadata definitions


def test_update_app_metadata_replaces_definitions(operator, app, database):
    operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": [{"path": "old"}]})
    response = operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": [
        {"id": "a", "path": "profile.first", "required": True, "fieldName": "first", "canEdit": True},
        {"path": "team"},
    ]})

    assert response.status_code == 200
    assert response.json()["metaData"] == [
        {"id": "a", "path": "profile.first", "required": True, "fieldName": "first", "canEdit": True},
        {"id": None, "path": "team", "required": False, "fieldName": "team", "canEdit": False},
    ]
    assert audit_records(database, app["appId"], "updateAppMetaData")[-1]["value"] == {"paths": ["profile.first", "team"]}


@pytest.mark.parametrize("definitions", [
    "not json", {"path": "x"}, [{"path": ""}], [{"path": "a..b"}], [{"path": "sub"}], [{"path": "exp.x"}],
    [{"path": "userName"}], [{"path": "email", "fieldName": "mail"}], [{"path": "a"}, {"path": "a"}], [{"path": "a", "required": "yes"}],
    [{"path": "$where"}], [{"path": f"f{index}"} for index in range(51)], ["a"],
])
def test_update_app_metadata_rejects_bad_definitions(operator, app, database, definitions):
    before = _stored(database, app)
    _assert_rejected(operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": definitions}))
    assert _stored(database, app) == before


def test_email_path_needs_email_field_name(operator, app):
    response = operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": [{"path": "email", "fieldName": "email"}]})
    assert response.status_code == 200


def test_update_invite_metadata_has_no_can_edit(operator, app, database):
    response = operator.post("/updateAppInviteMetaData", {"appId": app["appId"], "metaDataInvite": [
        {"id": 1, "path": "invitedBy", "canEdit": True}]})

    assert response.status_code == 200
    assert response.json()["metaDataInvite"] == [{"id": 1, "path": "invitedBy", "required": False, "fieldName": "invitedBy"}]
    assert len(audit_records(database, app["appId"], "updateAppInviteMetaData")) == 1


def test_metadata_routes_errors(operator, app):
    _assert_rejected(operator.post("/updateAppMetaData", {"appId": app["appId"]}), MISSING_PARAM)
    _assert_rejected(operator.post("/updateAppMetaData", {"metaData": []}), MISSING_PARAM)
    _assert_rejected(operator.post("/updateAppInviteMetaData", {"appId": UNKNOWN_APP_ID, "metaDataInvite": []}), APP_NOT_FOUND)


def test_delete_metadata_removes_one_definition(operator, app):
    operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": [{"path": "a"}, {"path": "b"}, {"path": "c"}]})

    response = operator.post("/deleteMetadata", {"appId": app["appId"], "type": "metaData", "index": 0})

    assert response.status_code == 200
    assert [item["path"] for item in response.json()["metaData"]] == ["b", "c"]
    form = operator.post_form("/deleteMetadata", {"appId": app["appId"], "type": "metaData", "index": "1"})
    assert [item["path"] for item in form.json()["metaData"]] == ["b"]


@pytest.mark.parametrize("body", [
    {"type": "metaData", "index": 1}, {"type": "metaData", "index": -1}, {"type": "metaData", "index": "x"},
    {"type": "appToken", "index": 0}, {"type": "metaDataInvite", "index": 0},
])
def test_delete_metadata_rejects_bad_index_or_type(operator, app, database, body):
    operator.post("/updateAppMetaData", {"appId": app["appId"], "metaData": [{"path": "only"}]})
    before = _stored(database, app)
    _assert_rejected(operator.post("/deleteMetadata", {"appId": app["appId"], **body}))
    assert _stored(database, app) == before


def test_delete_metadata_errors(operator):
    _assert_rejected(operator.post("/deleteMetadata", {"type": "metaData", "index": 0}), MISSING_PARAM)
    _assert_rejected(operator.post("/deleteMetadata", {"appId": UNKNOWN_APP_ID, "type": "metaData", "index": 0}), APP_NOT_FOUND)
