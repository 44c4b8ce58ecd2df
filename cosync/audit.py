"""The audit log (`applogs`): one record per operator and end-user action, without secrets.

Records expire `APPLOG_RETENTION_DAYS` after `createdAt` (see `db.ensure_log_retention`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Iterator

from pymongo.errors import PyMongoError

from cosync import db
from cosync.dates import utc_now
from cosync.errors import ApiError

log = logging.getLogger(__name__)

# `logType` values, as CosyncJWT writes them.
USER_LOG = "user"
OPERATOR_LOG = "app"


def record(app_id: str, action: str, status: str, handle: str | None = None, log_type: str = USER_LOG, **details: Any) -> None:
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


def record_operator(app_id: str, action: str, status: str = "success", **details: Any) -> None:
    """Insert an audit record of an operator action (API or CLI) with `logType` "app".

    `details` name what changed (field or setting names, counts), never a secret value.
    """
    record(app_id, action, status, log_type=OPERATOR_LOG, **details)


@contextlib.contextmanager
def operator_action(app_id: str, action: str, **details: Any) -> Iterator[dict[str, Any]]:
    """Record the operator action run in the block: "success", or "error" with the error code.

    The block may add details to the yielded dict. Enter it only after the app was found, so
    that requests naming no real app leave no records.
    """
    try:
        yield details
    except ApiError as error:
        record_operator(app_id, action, "error", code=error.error.code, **details)
        raise
    record_operator(app_id, action, "success", **details)
