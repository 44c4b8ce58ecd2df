"""Render the measurements of bench/run.py as the Markdown page docs/benchmarks.md."""

from __future__ import annotations

import statistics
from typing import Any

from cosync import crypto

TARGETS = {
    "login": 1.15,
    "getUser": 2.0,
    "cold start": 1.5,
}
COMMAND_TARGETS = {("getUser", "access token"): 1, ("login", "right password"): 3, ("signup", "flow code, new handle"): 4}


def fast(samples: list[float]) -> float:
    """Return the 10th percentile: the time of a run that nothing else interrupted."""
    return sorted(samples)[len(samples) // 10]


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def _ratio_cells(measured: list[float], floor: list[float], target: float) -> list[str]:
    """Return the cells of one timing target: fast-run ratio and times, target, verdict,
    ratio of medians."""
    ratio = fast(measured) / fast(floor)
    return [
        f"{ratio:.2f} ({_ms(fast(measured))} / {_ms(fast(floor))}, {(fast(measured) - fast(floor)) * 1000:+.1f} ms)",
        f"<= {target}",
        _verdict(ratio, target),
        f"{statistics.median(measured) / statistics.median(floor):.2f} ({_ms(statistics.median(measured))} / {_ms(statistics.median(floor))})",
    ]


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**missed**"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render(*, quick: bool, rounds: Any, machine: dict[str, str], counts: list[Any], login: dict[str, list[float]],
           get_user: dict[str, list[float]], argon2: dict[tuple[int, int], list[float]],
           page_faults: dict[tuple[int, int], float], cold_start: dict[str, list[float]], date: str) -> str:
    by_case = {(count.route, count.case): count for count in counts}
    chosen = (crypto.ARGON2_MEMORY_KIB, crypto.ARGON2_ITERATIONS)

    sections = [
        "# Benchmarks",
        "This page is written by `make bench` (`bench/run.py`); edit the generator, not the page."
        + (" **Quick run: too few samples to mean anything.**" if quick else ""),
        _method(rounds, date),
        "## Machine\n\n" + _table(["", ""], [[name, value] for name, value in machine.items()]),
        "## Targets\n\n" + _table(
            ["measure", "ratio of fast runs (10th percentiles)", "target", "", "ratio of medians"],
            [
                ["login request / Argon2id verify alone", *_ratio_cells(login["login request"], login["Argon2id verify"], TARGETS["login"])],
                ["getUser request / one find_one", *_ratio_cells(get_user["getUser request"], get_user["find_one"], TARGETS["getUser"])],
                ["cold start / four imports", *_ratio_cells(cold_start["function_app + first getUser"], cold_start["four imports"], TARGETS["cold start"])],
                *[
                    [f"commands: {route} ({case})", f"{len(by_case[(route, case)].commands)} before the response", f"<= {target}",
                     _verdict(len(by_case[(route, case)].commands), target), ""]
                    for (route, case), target in COMMAND_TARGETS.items()
                ],
            ],
        )
        + "\n\nTimings: the targets apply to the fast runs. This machine's virtual CPUs are"
        + " often paused by the hypervisor, which stretches a 40 ms computation to 400 ms in some"
        + " runs and not in others, whatever the code does. The stretch only ever adds time, so the"
        + " 10th percentile of each measure shows the cost of the code, and the ratio of medians"
        + " shows how noisy the run was. Commands: what a request sends before its response. The"
        + " audit record follows it (see below).",
        _commands_section(counts),
        _argon2_section(argon2, page_faults, chosen),
        _cold_start_section(),
    ]
    return "\n\n".join(sections) + "\n"


def _method(rounds: Any, date: str) -> str:
    return f"""## Method

Run on {date} with `make bench`. The suite starts FerretDB on 127.0.0.1 (or uses `MONGODB_URI`,
in a database of its own), creates throw-away secrets and apps, and calls the functions that
`function_app.py` registers in-process, with an `azure.functions.HttpRequest`, as the Functions
host does; no HTTP server is in between.

- **Ratios, not times.** Each ratio divides two times measured in the same run, with the
  measured call and its reference call interleaved round by round ({rounds.requests} rounds for
  requests, {rounds.cold_starts} for cold starts, {rounds.argon2} for each Argon2id setting), because
  the machine is shared and its speed drifts. A target is judged on the 10th percentiles (the
  fast runs), since interruptions by other work only ever add time. The medians are shown too.
- **Login** times a whole `login` request with the right password (rate-limit counters are
  cleared between rounds, outside the timed part) against `verify_password` alone on the
  same stored hash.
- **getUser** times a whole request with an access token against one `find_one` of the same
  user document through the same `MongoClient`.
- **Commands** are counted with a pymongo `CommandListener`. Every route runs twice with
  fresh users and the second run is reported, so the app document, e-mail templates and
  rate-limit slot guesses are warm, as on a worker that has served requests before. Commands
  of the audit writer's thread are listed apart: they come after the response.
- **Cold start** runs `bench/cold_start.py` in fresh processes: `import function_app` and one
  `getUser` request (MongoDB connection, index check, secrets and key loading included),
  against the import of `azure.functions`, `pymongo`, `jwt` and `cryptography` alone. Both
  clocks start at the script's first statement, so the interpreter's start-up is left out."""


def _commands_section(counts: list[Any]) -> str:
    rows = [
        [count.route, count.case, len(count.commands), ", ".join(count.commands) or "none", ", ".join(count.after_response) or "none"]
        for count in counts
    ]
    header = ["route", "case", "commands", "which", "after the response"]
    return "## Database commands per route (warm worker)\n\n" + _table(header, rows) + """

Notes:

- The app document and e-mail templates come from the worker's cache (`APP_CACHE_SECONDS`,
  30 s by default), so no route reads `apps` or `emailtemplates` while the entry is fresh.
- Rate limits take one slot document per limit; all limits of a request go in one unordered
  `insert` into `counters`. A slot already taken (another worker counted meanwhile) costs a
  `count` and another `insert` for that limit, and stays exact.
- Audit records (`applogs`) are written after the response, as CosyncJWT does, by one
  background thread per worker (`cosync/audit.py`). Records queued while a write is under way
  go together in one `insert`, so under parallel load the audit costs less than one command
  per request. A worker waits for its queue before it reads the log and when it exits. A
  record that MongoDB rejects is written to the Functions log in full.
- A successful login sends 3 commands before its response, two of them at the same time: the
  rate-limit slots and the user read overlap on two pooled connections, and the `lastLogin`
  update overlaps the signing of the tokens. So the request waits for two round trips.
- Sign-up with flow `code` reads whether the handle has an account and writes the pending
  sign-up and its code entry, besides the rate-limit slots. A repeated sign-up of the same
  handle also reads the earlier code entries. Flow `none` needs 3."""


def _argon2_section(argon2: dict[tuple[int, int], list[float]], page_faults: dict[tuple[int, int], float], chosen: tuple[int, int]) -> str:
    rows = []
    for (memory, iterations), samples in argon2.items():
        label = " (ours)" if (memory, iterations) == chosen else ""
        rows.append([
            f"m={memory // 1024} MiB, t={iterations}, p=1{label}", _ms(statistics.median(samples)),
            _ms(fast(samples)), f"{page_faults[(memory, iterations)]:.0f}",
        ])
    return f"""## Argon2id parameters

Verification of one hash per parameter set: the five settings that the OWASP Password Storage
Cheat Sheet lists as equivalent minimums, and ours. The last column counts the minor page
faults of one verification (median), that is, memory pages the process had to get from the
kernel.

{_table(["parameters", "median", "10th percentile", "page faults"], rows)}

We use m={chosen[0] // 1024} MiB, t={chosen[1]}, p=1 (`cosync/crypto.py`), which verifies in
{_ms(statistics.median(argon2[chosen]))} (median) here. The reasoning, for a Flex Consumption instance of the
2048 MB memory class:

- **One lane.** Microsoft's Flex Consumption page lists 1 CPU core as the typical allocation
  of a 2048 MB instance; we assume one core. A second lane would only help with a second
  core.
- **More than the OWASP minimum.** OWASP asks for at least m=19 MiB with t=2, or one of the
  equivalent pairs above. Ours uses more memory and about twice the work
  ({chosen[0] // 1024} MiB x {chosen[1]} passes against 19 MiB x 2).
- **Memory below 32 MiB.** glibc's `malloc` hands out blocks above its mmap threshold as
  fresh mappings, and the threshold grows to at most 32 MiB on 64-bit Linux. A hash with 32
  MiB or more therefore faults in all of its pages on every call, which the page-fault column
  shows for the 46 MiB setting and which costs time on every login. Below that, the memory of
  one verification is reused by the next.
- **Memory per instance.** One verification needs {chosen[0] // 1024} MiB of the instance's 2 GB;
  even 16 requests at once would need about {16 * chosen[0] // 1024} MiB.
- **Time.** A login should spend most of its time in the hash (the login ratio above), and
  the rest of the request is kept small next to it. The rate limits bound online guessing;
  the hash cost is what an attacker with a copy of the database pays per guess.

Hashes with other parameters (the earlier m=19 MiB, t=2, or bcrypt from CosyncJWT) still
verify and are rehashed with these parameters at the user's next successful login."""


def _cold_start_section() -> str:
    return """## Cold start

The first request of a process connects to MongoDB, checks the indexes, loads the secrets
and parses the server key; `import function_app` loads our modules. SendGrid, Twilio,
`azure.identity`, `azure.keyvault`, `segno` and `requests` are imported at their first
use only (a test checks this), so a worker that serves logins and profile reads never loads them."""
