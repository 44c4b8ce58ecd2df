"""The audit log (`applogs`): one record per operator and end-user action, without secrets.

Records are written after the response by one background thread per process, so the request
does not wait for the audit insert (CosyncJWT also inserts them after responding). Records
queued while a write is under way go to MongoDB together in one insert. Before a read of the
log, and when the process exits normally, `flush` waits for the queued records. A record that
cannot be written is logged in full (it contains no secret), so it still reaches the
Functions log.

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

from pymongo.errors import BulkWriteError

from cosync import db
from cosync.dates import utc_now
from cosync.errors import ApiError
from cosync.settings import get_settings

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
# Failed records logged in full per failed insert; the rest are counted.
LOGGED_RECORDS = 100


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
    # The database is named now, so the record goes to the one of the request's settings. The
    # client is looked up at write time, so a client closed meanwhile is never used.
    _writer.submit(get_settings().mongodb_database, document)


def flush(timeout: float | None = FLUSH_SECONDS) -> bool:
    """Wait until the records queued in this process so far are written (or given up); return
    False if `timeout` seconds passed first."""
    return _writer.flush(timeout)


class _Writer:
    """The background thread that inserts queued audit records."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._queue: list[tuple[str, dict[str, Any]]] = []
        # Records queued and records handled (written or logged) since the start, in order, so
        # a flush waits only for what was queued before it.
        self._queued = 0
        self._done = 0
        self._thread: threading.Thread | None = None

    def submit(self, database: str, document: dict[str, Any]) -> None:
        with self._condition:
            if len(self._queue) < MAX_QUEUED:
                self._queue.append((database, document))
                self._queued += 1
                self._ensure_thread()
                self._condition.notify_all()
                return
        _insert(database, [document])

    def flush(self, timeout: float | None) -> bool:
        with self._condition:
            target = self._queued
            return self._condition.wait_for(lambda: self._done >= target, timeout)

    def take_all(self) -> list[tuple[str, dict[str, Any]]]:
        with self._condition:
            batch, self._queue = self._queue, []
            return batch

    def after_fork_in_child(self) -> None:
        # The parent writes what it had queued; the child starts empty, with a thread of its own.
        self._reset()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=WRITER_THREAD_NAME, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._queue))
                batch, self._queue = self._queue, []
            try:
                for database, documents in _by_database(batch):
                    _insert(database, documents)
            finally:
                with self._condition:
                    self._done += len(batch)
                    self._condition.notify_all()


def _by_database(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for database, document in batch:
        groups.setdefault(database, []).append(document)
    return list(groups.items())


def _insert(database: str, documents: list[dict[str, Any]]) -> None:
    try:
        db.get_client()[database][db.APP_LOGS].insert_many(documents, ordered=False)
    except BulkWriteError as error:
        # Only the documents named in writeErrors failed, and the rest were written.
        failed = [documents[entry["index"]] for entry in error.details.get("writeErrors", [])]
        _log_unwritten(failed or documents, error)
    except Exception as error:  # the writer thread must outlive any error
        _log_unwritten(documents, error)


def _log_unwritten(documents: list[dict[str, Any]], error: Exception) -> None:
    """Log the records in full, up to LOGGED_RECORDS of them, and how many more were lost."""
    for document in documents[:LOGGED_RECORDS]:
        log.error("could not write audit record (%s); the record: %s", error, json.dumps(document, default=str))
    if len(documents) > LOGGED_RECORDS:
        log.error("could not write %d more audit records (%s)", len(documents) - LOGGED_RECORDS, error)


def _flush_at_exit() -> None:
    if not flush():
        left = _writer.take_all()
        if left:
            _log_unwritten([document for _, document in left], TimeoutError(f"not written within {FLUSH_SECONDS:g} s of exit"))


_writer = _Writer()
os.register_at_fork(after_in_child=_writer.after_fork_in_child)
# Runs at a normal interpreter exit, not when the process is killed.
atexit.register(_flush_at_exit)


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
