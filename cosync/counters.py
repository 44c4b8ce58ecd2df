"""Bounded counters in MongoDB that stay exact under concurrent requests on any server.

A counter with limit N is up to N documents whose `_id` is `<key>#<n>`. Counting one more
means inserting a free slot, and the unique `_id` gives each slot to exactly one request. An
`$inc` or find-and-modify would be simpler, but FerretDB 1.x applies those without isolation,
so parallel requests lose updates there.

All slots of a key should share one expiry, so that they disappear together; `claim` still
fills any gap an early expiry leaves.
"""

from __future__ import annotations

import datetime

from pymongo.errors import DuplicateKeyError

from cosync import db


def count(key: str) -> int:
    return db.collection(db.COUNTERS).count_documents({"key": key})


def claim(key: str, limit: int, expires_at: datetime.datetime) -> bool:
    """Count one more for `key`; return False, counting nothing, when `limit` is reached."""
    counters = db.collection(db.COUNTERS)
    used = count(key)
    # The next slot is usually free; the lower ones are tried last, in case one expired early.
    for slot in [*range(used + 1, limit + 1), *range(1, min(used, limit) + 1)]:
        try:
            counters.insert_one({"_id": f"{key}#{slot}", "key": key, "expiresAt": expires_at})
        except DuplicateKeyError:
            continue
        return True
    return False
