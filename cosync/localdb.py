"""A local FerretDB (MongoDB wire protocol over SQLite) for development and tests.

FerretDB is started on 127.0.0.1 with telemetry off and no debug listener, because by default
it opens a debug port and later reports usage to an outside host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pymongo

DEFAULT_BINARY = Path(".data/bin/ferretdb")
START_TIMEOUT_SECONDS = 30


class LocalDatabaseError(RuntimeError):
    """FerretDB is not installed or did not start."""


@dataclass
class LocalDatabase:
    process: subprocess.Popen
    uri: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_binary() -> Path:
    configured = os.environ.get("FERRETDB_BIN")
    candidates = [Path(configured)] if configured else []
    candidates.append(DEFAULT_BINARY)
    found = shutil.which("ferretdb")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise LocalDatabaseError(
        "FerretDB is not installed: run `make .data/bin/ferretdb` or set FERRETDB_BIN, "
        "or set MONGODB_URI to use another MongoDB server"
    )


def start(data_dir: Path, port: int | None = None) -> LocalDatabase:
    """Start FerretDB with its SQLite files in `data_dir` and wait until it responds to a ping."""
    binary = find_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = data_dir / "ferretdb.log"
    environment = {**os.environ, "DO_NOT_TRACK": "1"}
    command = [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{data_dir.resolve()}/",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={data_dir.resolve()}",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=error",
    ]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=environment)
    database = LocalDatabase(process=process, uri=f"mongodb://127.0.0.1:{port}/", log_path=log_path)
    _wait_until_ready(database)
    return database


@contextlib.contextmanager
def running(data_dir: Path) -> Iterator[str]:
    """Yield the URI of the server in `MONGODB_URI`, or else of a FerretDB started afresh with
    its files in `data_dir`, which is stopped and removed on exit."""
    configured = os.environ.get("MONGODB_URI")
    if configured:
        yield configured
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    database = start(data_dir)
    try:
        yield database.uri
    finally:
        database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_until_ready(database: LocalDatabase) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if database.process.poll() is not None:
            raise LocalDatabaseError(f"FerretDB exited at start; see {database.log_path}")
        client = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=500)
        try:
            client.admin.command("ping")
            return
        except pymongo.errors.PyMongoError:
            time.sleep(0.2)
        finally:
            client.close()
    database.stop()
    raise LocalDatabaseError(f"FerretDB did not respond within {START_TIMEOUT_SECONDS} s; see {database.log_path}")
