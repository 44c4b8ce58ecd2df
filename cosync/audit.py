"""The audit log (`applogs`): one record per operator and end-user action, without secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

from pymongo.errors import PyMongoError

from cosync import db
from cosync.dates import utc_now

log = logging.getLogger(__name__)


def record(app_id: str, action: str, status: str, handle: str | None = None, log_type: str = "user", **details: Any) -> None:
    """Insert an audit record; a failure to write it is logged and never fails the request.

    `details` are stored as given, so callers pass no password, code, token or key in them.
    """
    document = {
        "appId": app_id,
        "action": action,
        "status": status,
        "logType": log_type,
        "value": json.dumps({"handle": handle, **details}, default=str, separators=(",", ":")),
        "createdAt": utc_now(),
    }
    if handle is not None:
        document["handle"] = handle
    try:
        db.collection(db.APP_LOGS).insert_one(document)
    except PyMongoError as error:
        log.warning("could not write audit record %s for app %s: %s", action, app_id, error)
