"""The audit log (`applogs`): one record per operator and end-user action, without secrets.

Records are written after the response, by one background thread per process, as CosyncJWT
does; the request does not wait for the audit insert. Records queued while a write is under
way go to MongoDB together in one insert. Before a read of the log, and when the process
exits, `flush` waits for the queued records. A record that cannot be written is logged in full
(it contains no secret), so it still reaches the Functions log.

Records expire `APPLOG_RETENTION_DAYS` after `createdAt` (see `db.ensure_log_retention`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
from typing import Any, Iterator

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, PyMongoError

from cosync import db
from cosync.dates import utc_now
from cosync.errors import ApiError

log = logging.getLogger(__name__)

# `logType` values, as CosyncJWT writes them.
USER_LOG = "user"
OPERATOR_LOG = "app"

# Records waiting beyond this many are written by the request itself, which slows requests
# down instead of growing memory without bound while the database is slow.
MAX_QUEUED = 10_000
# How long a flush (a log read, a client reset, the exit of the process) waits for queued records.
FLUSH_SECONDS = 10.0
WRITER_THREAD_NAME = "cosync-audit"


def record(app_id: str, action: str, status: str, handle: str | None = None, log_type: str = USER_LOG, **details: Any) -> None:
    """Queue an audit record; a failure to write it is logged and never fails the request.

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
        # Resolved now, so the record goes to the database of the request's settings.
        collection = db.collection(db.APP_LOGS)
    except PyMongoError as error:
        _log_unwritten([document], error)
        return
    _writer.submit(collection, document)


def flush(timeout: float | None = None) -> bool:
    """Wait until every record queued in this process is written (or given up); return False
    if `timeout` seconds passed first."""
    return _writer.flush(timeout)


class _Writer:
    """The background thread that inserts queued audit records."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: list[tuple[Collection, dict[str, Any]]] = []
        self._writing = False
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, collection: Collection, document: dict[str, Any]) -> None:
        with self._condition:
            if len(self._queue) < MAX_QUEUED:
                self._queue.append((collection, document))
                self._ensure_thread()
                self._condition.notify_all()
                return
        _insert(collection, [document])

    def flush(self, timeout: float | None) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._writing, timeout)

    def _ensure_thread(self) -> None:
        # A forked child inherits the queue but not the thread.
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=WRITER_THREAD_NAME, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._queue))
                batch, self._queue = self._queue, []
                self._writing = True
            try:
                for collection, documents in _by_collection(batch):
                    _insert(collection, documents)
            finally:
                with self._condition:
                    self._writing = False
                    self._condition.notify_all()


def _by_collection(batch: list[tuple[Collection, dict[str, Any]]]) -> list[tuple[Collection, list[dict[str, Any]]]]:
    groups: dict[tuple[int, str], tuple[Collection, list[dict[str, Any]]]] = {}
    for collection, document in batch:
        key = (id(collection.database.client), collection.full_name)
        groups.setdefault(key, (collection, []))[1].append(document)
    return list(groups.values())


def _insert(collection: Collection, documents: list[dict[str, Any]]) -> None:
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        # Only the documents named in writeErrors failed, and the rest were written.
        failed = [documents[entry["index"]] for entry in error.details.get("writeErrors", [])]
        _log_unwritten(failed or documents, error)
    except Exception as error:  # the writer thread must outlive any error
        _log_unwritten(documents, error)


def _log_unwritten(documents: list[dict[str, Any]], error: Exception) -> None:
    for document in documents:
        log.error("could not write audit record (%s); the record: %s", error, json.dumps(document, default=str))


_writer = _Writer()
atexit.register(flush, FLUSH_SECONDS)


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
