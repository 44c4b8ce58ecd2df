"""One cold start, timed inside a fresh process; prints the elapsed seconds.

`baseline` imports only azure.functions, pymongo, jwt and cryptography. `app` imports
function_app and serves one getUser request with the access token in BENCH_ACCESS_TOKEN,
against the database and secrets named by the usual settings. The clock starts at the first
statement, so the interpreter's own start-up is left out of both.

Run by bench/run.py: python bench/cold_start.py baseline|app
"""

import time

started = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402


def serve_first_request() -> None:
    import azure.functions as func
    import function_app

    function = next(item for item in function_app.app.get_functions() if item.get_function_name() == "getUser")
    request = func.HttpRequest(
        method="GET",
        url="http://127.0.0.1:7071/api/appuser/getUser",
        headers={"access-token": os.environ["BENCH_ACCESS_TOKEN"], "x-forwarded-for": "203.0.113.7:50000"},
        body=b"",
    )
    response = function.get_user_function()(request, None)
    if response.status_code != 200:
        raise SystemExit(f"getUser returned HTTP {response.status_code}: {response.get_body()!r}")


if sys.argv[1] == "baseline":
    import azure.functions  # noqa: F401
    import cryptography  # noqa: F401
    import jwt  # noqa: F401
    import pymongo  # noqa: F401
else:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    serve_first_request()

print(time.perf_counter() - started)
