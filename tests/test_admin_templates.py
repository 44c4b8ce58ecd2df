"""Operator routes for e-mail templates and locales."""

from __future__ import annotations

import pytest
from bson import ObjectId

from cosync import db
from cosync.templates import DEFAULT_TEMPLATES
from flows import error, sign_up
from admin_helpers import audit_records, operator  # noqa: F401 (fixture)

INVALID_DATA = error(602, "invalid data")
INVALID_LOCALE = error(609, "invalid locale")
MISSING_PARAM = error(403, "missing parameter")
APP_NOT_FOUND = error(401, "app no longer exist")
UNKNOWN_APP_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def app(new_app):
    return new_app()


def _template(database, app, name="signUp", locale="EN"):
    return database[db.EMAIL_TEMPLATES].find_one({"appId": app["appId"], "templateName": name, "locale": locale})


def _assert_rejected(response, body=INVALID_DATA):
    assert response.status_code == 400, response.text
    assert response.json() == body


def test_email_templates_grouped_by_locale(operator, app):
    response = operator.get("/emailTemplates", appId=app["appId"])

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["EN"]
    assert sorted(item["templateName"] for item in body["EN"]) == sorted(DEFAULT_TEMPLATES)
    first = body["EN"][0]
    assert set(first) >= {"_id", "appId", "templateName", "subject", "replyTo", "htmlTemplate", "locale", "createdAt"}
    assert len(first["_id"]) == 24


def test_email_templates_counts_template_without_locale_as_en(operator, app, database):
    database[db.EMAIL_TEMPLATES].update_one({"appId": app["appId"], "templateName": "sms"}, {"$unset": {"locale": ""}})

    body = operator.get("/emailTemplates", appId=app["appId"]).json()

    assert "sms" in [item["templateName"] for item in body["EN"]]


def test_email_templates_errors(operator):
    _assert_rejected(operator.get("/emailTemplates"), MISSING_PARAM)
    _assert_rejected(operator.get("/emailTemplates", appId=UNKNOWN_APP_ID), APP_NOT_FOUND)


def test_add_locale_creates_its_templates(operator, app, database):
    response = operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["fr", "DE", "FR"]})

    assert response.status_code == 200
    body = response.json()
    assert body["appId"] == app["appId"]
    assert body["locales"] == ["EN", "FR", "DE"]
    assert list(body["localesTemplate"]) == ["EN", "FR", "DE"]
    for locale in ("FR", "DE"):
        assert sorted(item["templateName"] for item in body["localesTemplate"][locale]) == sorted(DEFAULT_TEMPLATES)
    assert database[db.APPS].find_one({"appId": app["appId"]})["locales"] == ["EN", "FR", "DE"]
    record = audit_records(database, app["appId"], "addRemoveLocaleEmailTemplate")[-1]
    assert record["value"] == {"added": ["FR", "DE"], "removed": []}


def test_remove_locale_deletes_only_its_templates(operator, app, database):
    operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["EN", "FR", "DE"]})

    response = operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["de"]})

    assert response.json()["locales"] == ["EN", "DE"]
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": app["appId"], "locale": "FR"}) == 0
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": app["appId"], "locale": "DE"}) == len(DEFAULT_TEMPLATES)
    assert database[db.EMAIL_TEMPLATES].count_documents({"appId": app["appId"], "locale": "EN"}) == len(DEFAULT_TEMPLATES)


def test_locales_in_form_body_as_comma_list(operator, app):
    response = operator.post_form("/addRemoveAppLocale", {"appId": app["appId"], "locales": "EN,IT"})
    assert response.json()["locales"] == ["EN", "IT"]


def test_locale_kept_keeps_edited_templates(operator, app, database):
    operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["FR"]})
    template = _template(database, app, locale="FR")
    operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": str(template["_id"]), "subject": "Bonjour"})

    operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["FR", "IT"]})

    assert _template(database, app, locale="FR")["subject"] == "Bonjour"


@pytest.mark.parametrize("locales, body", [
    (["EN", "XX"], INVALID_LOCALE), (["ES"], INVALID_LOCALE), ("EN,??", INVALID_LOCALE),
    ([1], INVALID_DATA), ({"FR": True}, INVALID_DATA), (None, MISSING_PARAM),
])
def test_add_remove_locale_rejects_bad_codes(operator, app, database, locales, body):
    _assert_rejected(operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": locales}), body)
    assert database[db.APPS].find_one({"appId": app["appId"]})["locales"] == ["EN"]


def test_add_remove_locale_unknown_app(operator):
    _assert_rejected(operator.post("/addRemoveAppLocale", {"appId": UNKNOWN_APP_ID, "locales": ["FR"]}), APP_NOT_FOUND)


def test_update_template_by_id(operator, app, database, api):
    template = _template(database, app)

    response = operator.post("/updateEmailTemplate", {
        "appId": app["appId"], "_id": str(template["_id"]), "subject": "Your code for %APP_NAME%",
        "replyTo": "help@example.com", "htmlTemplate": "<p>Code</p><p><strong>%CODE%</strong></p>",
    })

    assert response.status_code == 200
    body = response.json()
    assert body["_id"] == str(template["_id"])
    assert body["subject"] == "Your code for %APP_NAME%"
    assert body["replyTo"] == "help@example.com"
    assert body["htmlTemplate"] == "<p>Code</p>\n<p><strong>%CODE%</strong></p>"
    sign_up(api, app, "templated@example.com")
    from cosync.mail import read_outbox
    message = [item for item in read_outbox() if item["to"] == "templated@example.com"][-1]
    assert message["subject"] == f"Your code for {app['name']}"
    assert message["reply_to"] == "help@example.com"
    record = audit_records(database, app["appId"], "updateEmailTemplate")[-1]
    assert record["value"] == {"templateName": "signUp", "locale": "EN", "fields": ["htmlTemplate", "replyTo", "subject"]}


def test_update_template_by_name_and_locale(operator, app, database):
    operator.post("/addRemoveAppLocale", {"appId": app["appId"], "locales": ["FR"]})

    response = operator.post("/updateEmailTemplate", {
        "appId": app["appId"], "templateName": "signUpLink", "locale": "fr", "localeLinkText": "Confirmer",
    })

    assert response.status_code == 200
    assert _template(database, app, "signUpLink", "FR")["localeLinkText"] == "Confirmer"
    assert _template(database, app, "signUpLink", "EN")["localeLinkText"] != "Confirmer"


def test_update_template_of_other_app_is_not_found(operator, app, new_app, database):
    other = new_app()
    template = _template(database, other)

    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": str(template["_id"]), "subject": "Hijacked"}))

    assert _template(database, other)["subject"] == template["subject"]


@pytest.mark.parametrize("changes, body", [
    ({}, MISSING_PARAM), ({"subject": ""}, INVALID_DATA), ({"subject": "a\nb"}, INVALID_DATA),
    ({"replyTo": "nobody"}, INVALID_DATA), ({"htmlTemplate": ""}, INVALID_DATA), ({"htmlTemplate": 5}, INVALID_DATA),
    ({"htmlTemplate": "x" * 70000}, INVALID_DATA),
])
def test_update_template_rejects_bad_fields(operator, app, database, changes, body):
    template = _template(database, app)
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": str(template["_id"]), **changes}), body)
    assert _template(database, app) == template


def test_update_template_lookup_errors(operator, app):
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": "nope", "subject": "x"}))
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "_id": str(ObjectId()), "subject": "x"}))
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "templateName": "noSuch", "subject": "x"}))
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": app["appId"], "subject": "x"}), MISSING_PARAM)
    _assert_rejected(operator.post("/updateEmailTemplate", {"subject": "x"}), MISSING_PARAM)
    _assert_rejected(operator.post("/updateEmailTemplate", {"appId": UNKNOWN_APP_ID, "subject": "x"}), APP_NOT_FOUND)


def test_patch_app_locales_repairs_and_repeats_safely(operator, new_app, database):
    legacy = new_app()
    database[db.APPS].update_one({"appId": legacy["appId"]}, {"$set": {"locales": ["en"]}})
    database[db.EMAIL_TEMPLATES].update_one({"appId": legacy["appId"], "templateName": "sms"}, {"$set": {"locale": ""}})
    database[db.EMAIL_TEMPLATES].delete_one({"appId": legacy["appId"], "templateName": "signUpSuccess"})
    bare = new_app()
    database[db.APPS].update_one({"appId": bare["appId"]}, {"$unset": {"locales": ""}})

    first = operator.post("/patchAppLocales")
    second = operator.post("/patchAppLocales")

    assert first.status_code == 200
    assert first.content == b"true"
    assert second.content == b"true"
    assert database[db.APPS].find_one({"appId": legacy["appId"]})["locales"] == ["EN"]
    assert database[db.APPS].find_one({"appId": bare["appId"]})["locales"] == ["EN"]
    templates = list(database[db.EMAIL_TEMPLATES].find({"appId": legacy["appId"]}))
    assert sorted(item["templateName"] for item in templates) == sorted(DEFAULT_TEMPLATES)
    assert {item["locale"] for item in templates} == {"EN"}
    assert len(audit_records(database, legacy["appId"], "patchAppLocales")) == 1
