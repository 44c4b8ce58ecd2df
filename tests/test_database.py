"""Indexes and the purge of expired records."""

from __future__ import annotations

import datetime

import pytest
from pymongo.errors import DuplicateKeyError

from cosync import db
from cosync.routes.maintenance import purge_expired_records


def test_indexes_are_idempotent_and_unique(database):
    db.ensure_indexes(database)
    db.ensure_indexes(database)
    names = {index["name"]: index for index in database[db.USERS].list_indexes()}
    assert names["appId_handle_unique"]["unique"] is True
    assert database[db.APPS].index_information()["appId_unique"]["unique"] is True
    assert database[db.SIGNUPS].index_information()["appId_handle_unique"]["unique"] is True


def test_users_unique_per_app_and_handle(database):
    database[db.USERS].insert_one({"appId": "unique-test", "handle": "one@example.com"})
    database[db.USERS].insert_one({"appId": "unique-test-2", "handle": "one@example.com"})
    with pytest.raises(DuplicateKeyError):
        database[db.USERS].insert_one({"appId": "unique-test", "handle": "one@example.com"})


def test_purge_timer_removes_only_records_past_grace(database):
    now = datetime.datetime.now(datetime.timezone.utc)
    grace = datetime.timedelta(seconds=db.EXPIRING[db.SIGNUPS])
    database[db.SIGNUPS].insert_many([
        {"appId": "purge-test", "handle": "old@example.com", "expiresAt": now - grace - datetime.timedelta(minutes=1)},
        {"appId": "purge-test", "handle": "recent@example.com", "expiresAt": now - datetime.timedelta(hours=1)},
        {"appId": "purge-test", "handle": "live@example.com", "expiresAt": now + datetime.timedelta(hours=1)},
        {"appId": "purge-test", "handle": "done@example.com", "status": "verified"},
    ])

    purge_expired_records(None)

    left = sorted(document["handle"] for document in database[db.SIGNUPS].find({"appId": "purge-test"}))
    assert left == ["done@example.com", "live@example.com", "recent@example.com"]


def test_signups_expire_by_ttl_index_or_timer(database, caplog):
    """MongoDB gets a TTL index; FerretDB 1.x rejects it, which is logged, and the timer purges."""
    with caplog.at_level("WARNING", logger="cosync.db"):
        db.ensure_indexes(database)

    ttl = database[db.SIGNUPS].index_information().get("expiresAt_ttl")
    if ttl is not None:
        assert ttl["expireAfterSeconds"] == db.EXPIRING[db.SIGNUPS]
        assert caplog.records == []
    else:
        warnings = [record.getMessage().split(" (")[0] for record in caplog.records]
        assert warnings == [f"no TTL index on {name}" for name in [*db.EXPIRING, db.APP_LOGS]]


def test_duplicates_leave_unique_index_off_but_serving(environment, caplog):
    """A database from the reference server may hold duplicates; index creation logs and goes on."""
    import pymongo

    client = pymongo.MongoClient(environment["MONGODB_URI"])
    legacy = client[environment["MONGODB_DATABASE"] + "_legacy"]
    try:
        legacy[db.SIGNUPS].insert_many([
            {"appId": "legacy", "handle": "twice@example.com", "status": "verified"},
            {"appId": "legacy", "handle": "twice@example.com", "status": "pending"},
        ])
        with caplog.at_level("ERROR", logger="cosync.db"):
            db.ensure_indexes(legacy)

        errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
        assert len(errors) == 1
        assert errors[0].startswith("unique index appId_handle_unique on signups not created")
        assert "appId_handle_unique" not in legacy[db.SIGNUPS].index_information()
        assert "appId_handle_unique" in legacy[db.USERS].index_information()
    finally:
        client.drop_database(legacy.name)
        client.close()


def test_counter_fills_gap_left_by_early_expiry(database):
    from cosync import counters

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    for slot in range(2, 6):
        database[db.COUNTERS].insert_one({"_id": f"gap-test#{slot}", "key": "gap-test", "expiresAt": later})

    assert counters.claim("gap-test", 5, later) is True
    assert counters.claim("gap-test", 5, later) is False
    assert counters.count("gap-test") == 5
