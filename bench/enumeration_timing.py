"""Measure whether login and forgotPassword take the same time for known and unknown handles.

Starts FerretDB and the development server on 127.0.0.1 with throw-away secrets, creates an
app with one user, then times ROUNDS requests of each kind, alternating known and unknown
handles. Prints the median and the 10th and 90th percentiles in milliseconds.

Run: .venv/bin/python bench/enumeration_timing.py [ROUNDS]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from cosync import db, localdb, secrets  # noqa: E402


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    tenth, ninetieth = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    return f"median {statistics.median(ordered):7.1f}  p10 {tenth:7.1f}  p90 {ninetieth:7.1f}"


def _time(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="cosync-bench-"))
    database = localdb.start(work / "ferretdb")
    secrets.create_local_secrets(work / "secrets")
    os.environ.update({
        "MONGODB_URI": database.uri,
        "MONGODB_DATABASE": "bench",
        "LOCAL_SECRETS_DIR": str(work / "secrets"),
        "OUTBOX_DIR": str(work / "outbox"),
    })
    from cosync.devserver import FunctionHttpServer
    from cosync.services.apps import create_app
    from function_app import app as function_app

    server = FunctionHttpServer(("127.0.0.1", 0), function_app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        app = create_app("bench")
        db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": {"signupFlow": "none"}})
        headers = {"app-token": app["appToken"]}
        session = requests.Session()
        session.post(f"{base}/appuser/signup", headers=headers, json={"handle": "known@example.com", "password": _md5("pw")})

        timings: dict[str, list[float]] = {name: [] for name in ("login known", "login unknown", "forgot known", "forgot unknown")}
        for number in range(rounds):
            # The rate limits would stop the measurement; this bench measures time, not limits.
            db.collection(db.COUNTERS).delete_many({})
            for kind, handle in (("known", "known@example.com"), ("unknown", f"nobody{number}@example.com")):
                body = {"handle": handle, "password": _md5("wrong")}
                timings[f"login {kind}"].append(_time(lambda: session.post(f"{base}/appuser/login", headers=headers, json=body)))
                timings[f"forgot {kind}"].append(
                    _time(lambda: session.post(f"{base}/appuser/forgotPassword", headers=headers, json={"handle": handle}))
                )
        for name, samples in timings.items():
            print(f"{name:15} {_percentiles(samples)}  (ms, {len(samples)} requests)")
    finally:
        server.shutdown()
        database.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
