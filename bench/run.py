"""Measure request cost, database commands per route and cold start; write docs/benchmarks.md.

Starts FerretDB on 127.0.0.1 (or uses MONGODB_URI, in a database of its own that is dropped
at the end), creates throw-away secrets and apps, and calls the registered functions
in-process. Timings are reported as ratios of medians measured in the same run, with the
measured and the reference call interleaved, because the machines are shared and noisy.

Run: .venv/bin/python bench/run.py [--quick] [--output PATH]
`--quick` runs every measurement a few times only, to check that the suite works (seconds).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from cosync import localdb  # noqa: E402

# Argon2id parameter pairs of the OWASP Password Storage Cheat Sheet, which it calls
# equivalent: (memory in KiB, iterations), all with one lane.
OWASP_PAIRS = [(47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5)]


@dataclass
class Rounds:
    requests: int
    argon2: int
    cold_starts: int


FULL = Rounds(requests=61, argon2=21, cold_starts=21)
QUICK = Rounds(requests=2, argon2=1, cold_starts=1)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def interleave(rounds: int, measures: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each measure once per round, alternating their order; return the seconds per measure."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            samples[name].append(measures[name]())
    return samples


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class Bench:
    """The function app in this process, with a command counter on its MongoDB client."""

    def __init__(self, rounds: Rounds, work: Path) -> None:
        from pymongo import monitoring

        from harness import CommandCounter, FunctionClient

        self.rounds = rounds
        self.work = work
        self.counter = CommandCounter()
        # Only clients created after this line report to the counter, so it comes first.
        monitoring.register(self.counter)
        import function_app

        self.client = FunctionClient(function_app.app)

    def time_request(self, name: str, request) -> float:
        """Return the seconds that function `name` takes for `request`, which must succeed."""
        started = time.perf_counter()
        reply = self.client.send(name, request)
        elapsed = time.perf_counter() - started
        if reply.status != 200:
            raise RuntimeError(f"{name} returned HTTP {reply.status} {reply.body!r}")
        return elapsed

    def count_commands(self):
        from routes import Scenarios, count_commands

        self.scenarios = Scenarios(self.client, self.counter)
        return count_commands(self.scenarios, warm_up=self.rounds is not QUICK)

    def measure_login(self) -> dict[str, list[float]]:
        """Interleave a whole login request with the Argon2id verification of the same password."""
        from cosync import db
        from cosync.crypto import verify_password
        from harness import digest
        from routes import PASSWORD

        handle, _ = self.scenarios.register()
        stored = db.collection(db.USERS).find_one({"appId": self.scenarios.app["appId"], "handle": handle})["password"]
        headers = self.scenarios.app_headers()

        def login() -> float:
            # The login limits would stop the run; this measures time, so the counters are cleared.
            db.collection(db.COUNTERS).delete_many({})
            return self.time_request("login", self.client.request("login", {"handle": handle, "password": digest(PASSWORD)}, headers=headers))

        def verify() -> float:
            return timed(lambda: verify_password(digest(PASSWORD), stored))

        return interleave(self.rounds.requests, {"login request": login, "Argon2id verify": verify})

    def measure_get_user(self) -> dict[str, list[float]]:
        """Interleave a getUser request with one find_one of the same user document."""
        from cosync import db

        handle, session = self.scenarios.register()
        users = db.collection(db.USERS)
        query = {"appId": self.scenarios.app["appId"], "handle": handle}

        def get_user() -> float:
            return self.time_request("getUser", self.client.request("getUser", headers={"access-token": session["access-token"]}))

        return interleave(self.rounds.requests, {"getUser request": get_user, "find_one": lambda: timed(lambda: users.find_one(query))})

    def measure_argon2(self) -> tuple[dict[tuple[int, int], list[float]], dict[tuple[int, int], float]]:
        """Time the verification of one hash for each OWASP pair and for our parameters; also
        return the median count of minor page faults per verification."""
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        from cosync import crypto

        pairs = list(dict.fromkeys([(crypto.ARGON2_MEMORY_KIB, crypto.ARGON2_ITERATIONS), *OWASP_PAIRS]))
        password = b"0123456789abcdef0123456789abcdef"
        hashes = {
            pair: Argon2id(salt=os.urandom(16), length=32, iterations=pair[1], lanes=1, memory_cost=pair[0]).derive_phc_encoded(password)
            for pair in pairs
        }
        faults: dict[tuple[int, int], list[int]] = {pair: [] for pair in pairs}

        def verify(pair: tuple[int, int]) -> float:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            elapsed = timed(lambda: Argon2id.verify_phc_encoded(password, hashes[pair]))
            faults[pair].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            return elapsed

        samples = interleave(self.rounds.argon2, {pair: (lambda pair=pair: verify(pair)) for pair in pairs})
        return samples, {pair: statistics.median(counts) for pair, counts in faults.items()}

    def measure_cold_start(self) -> dict[str, list[float]]:
        """Interleave fresh processes that serve a first getUser with ones that import only the
        four libraries."""
        _, session = self.scenarios.register()
        environment = {**os.environ, "BENCH_ACCESS_TOKEN": session["access-token"]}

        def child(mode: str) -> float:
            result = subprocess.run(
                [sys.executable, str(BENCH / "cold_start.py"), mode],
                env=environment, capture_output=True, text=True, check=False, timeout=120,
            )
            if result.returncode != 0:
                raise RuntimeError(f"cold start ({mode}) failed: {result.stderr.strip()[-2000:]}")
            return float(result.stdout.strip().splitlines()[-1])

        return interleave(self.rounds.cold_starts, {"function_app + first getUser": lambda: child("app"), "four imports": lambda: child("baseline")})


def cpu_times() -> list[int]:
    """Return the machine's CPU time counters from /proc/stat (user ... steal), or [] elsewhere."""
    try:
        return [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return []


def describe_machine(times_before: list[int]) -> dict[str, str]:
    from cosync import db

    memory = "unknown"
    cpu = platform.processor() or "unknown"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(next(line for line in meminfo.splitlines() if line.startswith("MemTotal")).split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration, ValueError):
        pass
    info = db.get_client().admin.command("buildInfo")
    server = f"FerretDB {info['ferretdbVersion']}" if "ferretdbVersion" in info else f"MongoDB {info.get('version')}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    times_after = cpu_times()
    steal = "unknown"
    if times_before and times_after:
        spent = [after - before for before, after in zip(times_before, times_after)]
        busy = sum(spent) - spent[3] - spent[4]  # without idle and iowait
        steal = f"{100 * spent[7] / max(1, sum(spent)):.0f} % of all CPU time, {100 * busy / max(1, sum(spent)):.0f} % busy"
    return {
        "CPUs (`nproc`)": str(os.cpu_count()),
        "CPU": cpu,
        "memory": memory,
        "Python": platform.python_version(),
        "database": f"{server} on 127.0.0.1" if "127.0.0.1" in os.environ["MONGODB_URI"] else server,
        "load average at the end (1, 5, 15 min)": load,
        "during the run: stolen by the hypervisor, busy": steal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run each measurement a few times only (a smoke test)")
    parser.add_argument("--output", type=Path, help="report file (default: docs/benchmarks.md; with --quick: standard output)")
    arguments = parser.parse_args()
    rounds = QUICK if arguments.quick else FULL
    # FerretDB's missing TTL indexes and the rate-limit warnings are expected here.
    logging.basicConfig(level=logging.ERROR)
    output = arguments.output or (None if arguments.quick else ROOT / "docs" / "benchmarks.md")

    work = Path(tempfile.mkdtemp(prefix="cosync-bench-"))
    with localdb.running(work / "ferretdb") as uri:
        from cosync import secrets

        secrets.create_local_secrets(work / "secrets")
        os.environ.update({
            "MONGODB_URI": uri,
            "MONGODB_DATABASE": f"bench_{uuid.uuid4().hex[:8]}",
            "LOCAL_SECRETS_DIR": str(work / "secrets"),
            "OUTBOX_DIR": str(work / "outbox"),
            "FORGOT_PASSWORD_RESPONSE_MS": "0",
        })
        for name in ("KEY_VAULT_URL", "APP_CACHE_SECONDS", "SECRETS_CACHE_SECONDS"):
            os.environ.pop(name, None)
        sys.path.insert(0, str(BENCH))
        try:
            report = run(rounds, work)
        finally:
            from cosync import db

            db.get_client().drop_database(os.environ["MONGODB_DATABASE"])
            db.reset_client()
    shutil.rmtree(work, ignore_errors=True)
    if output is None:
        print(report)
    else:
        output.write_text(report, encoding="utf-8")
        print(f"wrote {output}")


def run(rounds: Rounds, work: Path) -> str:
    from report import render

    times_before = cpu_times()
    bench = Bench(rounds, work)
    counts = bench.count_commands()
    login = bench.measure_login()
    get_user = bench.measure_get_user()
    argon2, page_faults = bench.measure_argon2()
    cold_start = bench.measure_cold_start()
    return render(
        quick=rounds is QUICK,
        rounds=rounds,
        machine=describe_machine(times_before),
        counts=counts,
        login=login,
        get_user=get_user,
        argon2=argon2,
        page_faults=page_faults,
        cold_start=cold_start,
        date=datetime.date.today().isoformat(),
    )


if __name__ == "__main__":
    main()
