"""Bounded counters in MongoDB that stay exact under concurrent requests on any server.

A counter with limit N is up to N documents whose `_id` is `<key>#<n>`. Counting one more
means inserting a free slot, and the unique `_id` gives each slot to exactly one request. An
`$inc` or find-and-modify would be simpler, but FerretDB 1.x applies those without isolation,
so parallel requests lose updates there.

All slots of a key should share one expiry, so that they disappear together; `claim` still
fills any gap an early expiry leaves.

`claim_many` counts several keys with one insert: it guesses each key's next slot from what
this process claimed before, and falls back to `claim` for a key whose guess is taken. Any
free slot up to the limit is a correct claim, so a wrong guess costs time, never accuracy.
"""

from __future__ import annotations

import datetime
import threading

from pymongo.errors import BulkWriteError, DuplicateKeyError

from cosync import db

DUPLICATE_KEY = 11000
# The guesses are per key and window, so old ones are dropped wholesale past this size.
MAX_GUESSES = 4096

_guess_lock = threading.Lock()
_next_slot: dict[str, int] = {}


def count(key: str) -> int:
    return db.collection(db.COUNTERS).count_documents({"key": key})


def claim(key: str, limit: int, expires_at: datetime.datetime) -> bool:
    """Count one more for `key`; return False, counting nothing, when `limit` is reached."""
    return _claim_slot(key, limit, expires_at) is not None


def _claim_slot(key: str, limit: int, expires_at: datetime.datetime) -> str | None:
    """Claim a free slot of `key`; return its `_id`, or None when all `limit` slots are taken."""
    counters = db.collection(db.COUNTERS)
    used = count(key)
    # The next slot is usually free; the lower ones are tried last, in case one expired early.
    for slot in [*range(used + 1, limit + 1), *range(1, min(used, limit) + 1)]:
        slot_id = f"{key}#{slot}"
        try:
            counters.insert_one({"_id": slot_id, "key": key, "expiresAt": expires_at})
        except DuplicateKeyError:
            continue
        _remember(key, slot + 1)
        return slot_id
    return None


def claim_many(claims: list[tuple[str, int, datetime.datetime]]) -> list[str | None]:
    """Count one more for each (key, limit, expires_at); return, per claim, the `_id` of the
    slot it took, or None when its limit is reached.

    The guessed slots go to MongoDB in one unordered insert. Keys whose guess was taken or
    beyond the limit are claimed one by one, as `claim` does.
    """
    guesses = {}
    for index, (key, limit, _) in enumerate(claims):
        slot = _guess(key)
        if slot <= limit:
            guesses[index] = slot
    positions = list(guesses)
    documents = [
        {"_id": f"{claims[index][0]}#{guesses[index]}", "key": claims[index][0], "expiresAt": claims[index][2]}
        for index in positions
    ]
    taken = {positions[position] for position in _insert_free(documents)}

    results: list[str | None] = []
    for index, (key, limit, expires_at) in enumerate(claims):
        if index in guesses and index not in taken:
            _remember(key, guesses[index] + 1)
            results.append(f"{key}#{guesses[index]}")
        else:
            results.append(_claim_slot(key, limit, expires_at))
    return results


def release(slot_ids: list[str]) -> None:
    """Give back slots taken by `claim_many`, for a request that was rejected after all."""
    if slot_ids:
        db.collection(db.COUNTERS).delete_many({"_id": {"$in": slot_ids}})


def _insert_free(documents: list[dict]) -> set[int]:
    """Insert the documents, unordered; return the positions whose `_id` was already taken."""
    if not documents:
        return set()
    try:
        db.collection(db.COUNTERS).insert_many(documents, ordered=False)
    except BulkWriteError as error:
        write_errors = error.details.get("writeErrors", [])
        if any(entry.get("code") != DUPLICATE_KEY for entry in write_errors) or not write_errors:
            raise
        return {entry["index"] for entry in write_errors}
    return set()


def _guess(key: str) -> int:
    with _guess_lock:
        return _next_slot.get(key, 1)


def _remember(key: str, next_slot: int) -> None:
    with _guess_lock:
        if len(_next_slot) >= MAX_GUESSES:
            _next_slot.clear()
        _next_slot[key] = next_slot
