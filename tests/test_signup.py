"""POST /api/appuser/signup and POST /api/appuser/completeSignup."""

from __future__ import annotations

import concurrent.futures
import datetime
import json

import jwt
import pytest

from cosync import db
from cosync.mail import read_outbox
from flows import attempts_used, code_entries, digest, error, latest_code, register_user, sign_up


def _signup(api, app, **body):
    return api.post("/api/appuser/signup", headers={"app-token": app["appToken"]}, json=body)


def _complete(api, app, **body):
    return api.post("/api/appuser/completeSignup", headers={"app-token": app["appToken"]}, json=body)


def test_signup_emails_code_and_stores_pending_record(api, new_app, database):
    app = new_app()
    response = _signup(api, app, handle="  Ada@Example.COM ", password=digest("pw"))

    assert response.status_code == 200
    assert response.content == b"true"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    message = read_outbox()[-1]
    assert message["to"] == "ada@example.com"
    assert message["subject"] == f"Confirm your e-mail address for {app['name']}"
    code = latest_code("ada@example.com")
    assert 100000 <= int(code) <= 999999
    record = database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": "ada@example.com"})
    assert record["status"] == "pending"
    assert code not in json.dumps(record, default=str)
    entries = code_entries(database, app, "ada@example.com")
    assert len(entries) == 1
    assert entries[0]["password"].startswith("$argon2id$")
    assert code not in json.dumps(entries, default=str)


def test_signup_form_body_like_swift(api, new_app):
    app = new_app()
    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        data=f"handle=ada%2Btag@example.com&password={digest('pw')}",
    )
    assert response.status_code == 200
    assert response.content == b"true"
    assert read_outbox()[-1]["to"] == "ada+tag@example.com"


def test_complete_signup_creates_user_and_returns_tokens(api, new_app, database):
    app = new_app()
    code = sign_up(api, app, "grace@example.com")
    response = _complete(api, app, handle="Grace@Example.com", code=code)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jwt", "access-token", "signed-user-token"}
    public_pem = __import__("base64").b64decode(app["appPublicKey"])
    claims = jwt.decode(body["jwt"], public_pem, algorithms=["RS256"], audience="none")
    assert claims["sub"] == "grace@example.com"
    assert claims["email"] == "grace@example.com"
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": "grace@example.com"})
    assert user["status"] == "active"
    assert user["locale"] == "EN"
    record = database[db.SIGNUPS].find_one({"appId": app["appId"], "handle": "grace@example.com"})
    assert record["status"] == "verified"
    assert code_entries(database, app, "grace@example.com") == []
    assert attempts_used(app, "grace@example.com") == 0
    assert read_outbox()[-1]["subject"] == f"Welcome to {app['name']}"


def test_complete_signup_accepts_numeric_code_in_json(api, new_app):
    app = new_app()
    code = sign_up(api, app, "num@example.com")
    response = _complete(api, app, handle="num@example.com", code=int(code))
    assert response.status_code == 200
    assert set(response.json()) == {"jwt", "access-token", "signed-user-token"}


def test_signup_requires_app_token(api):
    response = api.post("/api/appuser/signup", json={"handle": "a@example.com", "password": digest("pw")})
    assert response.status_code == 400
    assert response.json() == error(400, "invalid app token")


def test_signup_missing_fields(api, new_app):
    app = new_app()
    assert _signup(api, app, password=digest("pw")).json() == error(403, "missing parameter")
    assert _signup(api, app, handle="a@example.com").json() == error(403, "missing parameter")
    assert _signup(api, app, handle="", password=digest("pw")).json() == error(403, "missing parameter")


def test_signup_rejects_password_that_is_not_a_digest(api, new_app, database):
    app = new_app()
    for password in ("short", "x" * 32, digest("pw") + "0"):
        response = _signup(api, app, handle="a@example.com", password=password)
        assert response.status_code == 400
        assert response.json() == error(602, "invalid data")
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_signup_rejects_handle_that_is_not_an_email(api, new_app, database):
    app = new_app()
    for handle in ("not-an-email", "a@b", "a b@example.com", "a@@example.com"):
        response = _signup(api, app, handle=handle, password=digest("pw"))
        assert response.json() == error(602, "invalid data"), handle
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_signup_existing_user_is_rejected(api, new_app):
    app = new_app()
    register_user(api, app, "taken@example.com")
    response = _signup(api, app, handle="TAKEN@example.com", password=digest("other"))
    assert response.status_code == 400
    assert response.json() == error(601, "handle already registered")


def test_signup_disabled_app(api, new_app):
    app = new_app(signupEnabled=False)
    response = _signup(api, app, handle="a@example.com", password=digest("pw"))
    assert response.json() == error(407, "app does not support signup")


def test_signup_suspended_and_migrated_apps(api, new_app):
    suspended = new_app(status="inactive")
    migrated = new_app(status="migrated")
    assert _signup(api, suspended, handle="a@example.com", password=digest("pw")).json() == error(402, "app is suspended")
    assert _signup(api, migrated, handle="a@example.com", password=digest("pw")).json() == error(413, "app is migrated")


def test_signup_unknown_app(api, new_app, database):
    app = new_app()
    database[db.APPS].delete_one({"appId": app["appId"]})
    response = _signup(api, app, handle="a@example.com", password=digest("pw"))
    assert response.json() == error(401, "app no longer exist")


def test_signup_locale_must_be_enabled(api, new_app):
    app = new_app(locales=["EN", "FR"])
    assert _signup(api, app, handle="a@example.com", password=digest("pw"), locale="de").json() == error(602, "invalid data")
    assert _signup(api, app, handle="b@example.com", password=digest("pw"), locale="xx").json() == error(602, "invalid data")
    assert _signup(api, app, handle="c@example.com", password=digest("pw"), locale="fr").content == b"true"


def test_signup_metadata_is_validated_and_kept(api, new_app, database):
    fields = [
        {"id": "1", "path": "user_data.name", "fieldName": "name", "required": True, "canEdit": True},
        {"id": "2", "path": "team", "fieldName": "team", "required": False, "canEdit": True},
    ]
    app = new_app(metaData=fields)
    handle = "meta@example.com"
    missing = _signup(api, app, handle=handle, password=digest("pw"), metaData=json.dumps({"team": "x"}))
    assert missing.json() == error(604, "invalid metadata")
    broken = _signup(api, app, handle=handle, password=digest("pw"), metaData="{not json")
    assert broken.json() == error(604, "invalid metadata")
    not_text = _signup(api, app, handle=handle, password=digest("pw"), metaData=json.dumps({"user_data": {"name": 5}}))
    assert not_text.json() == error(604, "invalid metadata")

    metadata = json.dumps({"user_data": {"name": " Ada "}, "sub": "victim@example.com", "extra": "dropped"})
    assert _signup(api, app, handle=handle, password=digest("pw"), metaData=metadata).content == b"true"
    session = _complete(api, app, handle=handle, code=latest_code(handle)).json()
    claims = jwt.decode(session["jwt"], options={"verify_signature": False})
    assert claims["user_data"] == {"name": "Ada"}
    assert claims["sub"] == handle
    assert "extra" not in claims
    user = database[db.USERS].find_one({"appId": app["appId"], "handle": handle})
    assert user["metaData"] == {"user_data": {"name": "Ada"}}


def _login(api, app, handle, password):
    return api.post(
        "/api/appuser/login", headers={"app-token": app["appToken"]}, json={"handle": handle, "password": digest(password)}
    )


@pytest.mark.parametrize("completed_by", ["first code", "second code"])
def test_contested_signup_gets_no_password(api, new_app, database, completed_by):
    """W9: when two sign-ups with different passwords are pending, neither password is kept."""
    app = new_app()
    handle = "victim@example.com"
    owner_code = sign_up(api, app, handle, "owner password")
    attacker_code = sign_up(api, app, handle, "attacker password")
    code = owner_code if completed_by == "first code" else attacker_code

    session = _complete(api, app, handle=handle, code=code)

    assert session.status_code == 200
    assert api.get("/api/appuser/getUser", headers={"access-token": session.json()["access-token"]}).status_code == 200
    assert _login(api, app, handle, "owner password").json() == error(600, "invalid login credentials")
    assert _login(api, app, handle, "attacker password").json() == error(600, "invalid login credentials")
    assert database[db.USERS].find_one({"appId": app["appId"], "handle": handle})["password"] == ""


def test_repeated_signup_with_same_password_keeps_it(api, new_app):
    app = new_app()
    handle = "again@example.com"
    first = sign_up(api, app, handle, "same password")
    sign_up(api, app, handle, "same password")

    assert _complete(api, app, handle=handle, code=first).status_code == 200
    assert _login(api, app, handle, "same password").status_code == 200


def test_signup_mails_per_handle_are_limited(api, new_app, database):
    app = new_app()
    handle = "flood@example.com"
    for _ in range(5):
        sign_up(api, app, handle)
    mailed = len(read_outbox())

    response = _signup(api, app, handle=handle, password=digest("pw"))

    assert response.status_code == 429
    assert response.json() == error(500, "internal server error")
    assert 0 < int(response.headers["Retry-After"]) <= 24 * 3600
    assert len(read_outbox()) == mailed
    assert len(code_entries(database, app, handle)) == 5
    other = _signup(api, app, handle="other@example.com", password=digest("pw"))
    assert other.content == b"true"


def test_complete_signup_wrong_code(api, new_app, database):
    app = new_app()
    code = sign_up(api, app, "wrong@example.com")
    wrong = "100000" if code != "100000" else "100001"
    response = _complete(api, app, handle="wrong@example.com", code=wrong)
    assert response.status_code == 400
    assert response.json() == error(602, "invalid data")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_complete_signup_code_dies_after_five_attempts(api, new_app, database):
    app = new_app()
    handle = "guess@example.com"
    code = sign_up(api, app, handle)
    wrong = "100000" if code != "100000" else "100001"
    for _ in range(5):
        assert _complete(api, app, handle=handle, code=wrong).json() == error(602, "invalid data")
    response = _complete(api, app, handle=handle, code=code)
    assert response.json() == error(411, "signup code expired.")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0

    fresh = sign_up(api, app, handle)
    assert _complete(api, app, handle=handle, code=fresh).status_code == 200


def test_complete_signup_expired_code(api, new_app, database):
    app = new_app()
    handle = "late@example.com"
    code = sign_up(api, app, handle)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    database[db.SIGNUP_CODES].update_many({"appId": app["appId"], "handle": handle}, {"$set": {"expiresAt": past}})
    response = _complete(api, app, handle=handle, code=code)
    assert response.json() == error(411, "signup code expired.")
    assert database[db.USERS].count_documents({"appId": app["appId"]}) == 0


def test_complete_signup_twice(api, new_app):
    app = new_app()
    code = sign_up(api, app, "twice@example.com")
    assert _complete(api, app, handle="twice@example.com", code=code).status_code == 200
    again = _complete(api, app, handle="twice@example.com", code=code)
    assert again.json() == error(601, "handle already registered")


def test_complete_signup_without_pending_record(api, new_app):
    app = new_app()
    response = _complete(api, app, handle="nobody@example.com", code="123456")
    assert response.json() == error(602, "invalid data")


def test_complete_signup_bad_fields(api, new_app):
    app = new_app()
    assert _complete(api, app, handle="a@example.com").json() == error(403, "missing parameter")
    assert _complete(api, app, code="123456").json() == error(403, "missing parameter")
    assert _complete(api, app, handle="a@example.com", code="12ab56").json() == error(602, "invalid data")


def test_complete_signup_disabled_and_suspended(api, new_app, database):
    app = new_app()
    code = sign_up(api, app, "gate@example.com")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"signupEnabled": False}})
    assert _complete(api, app, handle="gate@example.com", code=code).json() == error(407, "app does not support signup")
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"signupEnabled": True, "status": "inactive"}})
    assert _complete(api, app, handle="gate@example.com", code=code).json() == error(402, "app is suspended")


def test_concurrent_complete_signup_creates_one_user(api, new_app, database):
    app = new_app()
    handle = "race@example.com"
    code = sign_up(api, app, handle)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: _complete(api, app, handle=handle, code=code), range(2)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400]
    failed = next(response for response in responses if response.status_code == 400)
    assert failed.json() == error(601, "handle already registered")
    assert database[db.USERS].count_documents({"appId": app["appId"], "handle": handle}) == 1


def test_signup_flow_none_creates_user_at_once(api, new_app, database):
    app = new_app(signupFlow="none")
    response = _signup(api, app, handle="now@example.com", password=digest("pw"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jwt", "access-token", "code", "signed-user-token"}
    assert isinstance(body["code"], int)
    assert database[db.USERS].count_documents({"appId": app["appId"], "handle": "now@example.com"}) == 1


def test_signup_mail_escapes_placeholders(api, new_app, database):
    app = new_app()
    database[db.APPS].update_one({"appId": app["appId"]}, {"$set": {"name": "Fish & <Chips>"}})
    handle = "o'brien<b>@example.com"
    assert _signup(api, app, handle=handle, password=digest("pw")).content == b"true"

    message = read_outbox()[-1]
    assert "Hello o&#x27;brien&lt;b&gt;@example.com," in message["html"]
    assert "Enter this code in Fish &amp; &lt;Chips&gt; to confirm" in message["html"]
    assert "<b>" not in message["html"]
    assert message["subject"] == "Confirm your e-mail address for Fish & <Chips>"


def test_signup_deeply_nested_metadata(api, new_app, database):
    app = new_app(metaData=[{"id": "1", "path": "name", "fieldName": "name", "required": False, "canEdit": True}])
    nested = "[" * 40000 + "]" * 40000
    response = _signup(api, app, handle="deep@example.com", password=digest("pw"), metaData=nested)
    assert response.status_code == 400
    assert response.json() == error(604, "invalid metadata")
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_parallel_wrong_codes_never_exceed_limit(api, new_app):
    app = new_app()
    handle = "parallel@example.com"
    code = sign_up(api, app, handle)
    wrong = "100000" if code != "100000" else "100001"
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: _complete(api, app, handle=handle, code=wrong), range(24)))

    bodies = [response.json() for response in responses]
    assert bodies.count(error(602, "invalid data")) == 5
    assert bodies.count(error(411, "signup code expired.")) == 19
    assert attempts_used(app, handle) == 5


def test_parallel_signups_keep_every_mailed_code(api, new_app, database):
    app = new_app()
    handle = "double@example.com"
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(lambda _: _signup(api, app, handle=handle, password=digest("pw")), range(3)))

    assert [response.content for response in responses] == [b"true"] * 3
    assert len(code_entries(database, app, handle)) == 3
    mailed = [message for message in read_outbox() if message["to"] == handle]
    assert len(mailed) == 3
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"], "handle": handle}) == 1
    assert _complete(api, app, handle=handle, code=latest_code(handle)).status_code == 200


def test_signup_required_metadata_not_blank(api, new_app, database):
    app = new_app(metaData=[{"id": "1", "path": "name", "fieldName": "name", "required": True, "canEdit": True}])
    response = _signup(api, app, handle="blank@example.com", password=digest("pw"), metaData=json.dumps({"name": "   "}))
    assert response.json() == error(604, "invalid metadata")
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_signup_form_rejects_invalid_percent_encoding(api, new_app, database):
    app = new_app()
    response = api.post(
        "/api/appuser/signup",
        headers={"app-token": app["appToken"]},
        data=f"handle=%zz%C3@example.com&password={digest('pw')}",
    )
    assert response.json() == error(602, "invalid data")
    assert database[db.SIGNUPS].count_documents({"appId": app["appId"]}) == 0


def test_contested_signup_survives_used_up_codes(api, new_app, database):
    """Using up the guesses of the contested entry does not make the sign-up uncontested."""
    app = new_app()
    handle = "hidden@example.com"
    attacker_code = sign_up(api, app, handle, "attacker password")
    sign_up(api, app, handle, "owner password")
    _, contested_entry = code_entries(database, app, handle)
    assert contested_entry["contested"] is True
    key = f"signup-code:{contested_entry['_id']}"
    for slot in range(1, 6):
        database[db.COUNTERS].insert_one({"_id": f"{key}#{slot}", "key": key, "expiresAt": contested_entry["expiresAt"]})

    response = _complete(api, app, handle=handle, code=attacker_code)

    assert response.status_code == 200
    assert database[db.USERS].find_one({"appId": app["appId"], "handle": handle})["password"] == ""
    assert _login(api, app, handle, "attacker password").json() == error(600, "invalid login credentials")
