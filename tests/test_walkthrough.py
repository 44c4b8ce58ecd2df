"""The README walkthrough, end to end: the real CLI, `serve` over HTTP, and FerretDB.

Each step runs the command or request that the README shows, in a fresh secrets directory
and outbox, against the server started as `python -m cosync serve`.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

from flows import digest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cosync", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def served(environment, tmp_path):
    env = {
        **os.environ,
        "LOCAL_SECRETS_DIR": str(tmp_path / "secrets"),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "MONGODB_DATABASE": environment["MONGODB_DATABASE"] + "_walkthrough",
    }
    env.pop("PUBLIC_BASE_URL")  # `make run` leaves it unset
    init = _cli(env, "init", "--if-missing")
    assert init.returncode == 0, init.stderr
    assert init.stdout == f"created local development secrets in {tmp_path / 'secrets'}/\n"
    again = _cli(env, "init", "--if-missing")
    assert again.stdout == f"local development secrets already exist in {tmp_path / 'secrets'}/\n"

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cosync", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/api/unknown", timeout=1)
            break
        except requests.ConnectionError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.1)
    try:
        yield base, env, tmp_path / "outbox"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_readme_walkthrough(served):
    base, env, outbox = served

    secret = _cli(env, "server-secret")
    assert secret.returncode == 0, secret.stderr
    server_secret = secret.stdout.strip()
    assert jwt.decode(server_secret, options={"verify_signature": False})["scope"] == "server"

    created = requests.post(f"{base}/api/app", headers={"server-secret": server_secret}, json={"name": "My app"}, timeout=30)
    assert created.status_code == 200
    app_token = created.json()["appToken"]

    password = digest("my password")
    signup = requests.post(
        f"{base}/api/appuser/signup",
        headers={"app-token": app_token},
        json={"handle": "ada@example.com", "password": password},
        timeout=30,
    )
    assert signup.status_code == 200
    assert signup.text == "true"

    grep = subprocess.run(
        f"grep -ho '<strong>[0-9]\\{{6\\}}</strong>' {outbox}/*.json | tail -1 | tr -dc 0-9",
        shell=True, capture_output=True, text=True, check=True,
    )
    code = grep.stdout
    assert len(code) == 6

    completed = requests.post(
        f"{base}/api/appuser/completeSignup",
        headers={"app-token": app_token},
        json={"handle": "ada@example.com", "code": code},
        timeout=30,
    )
    assert completed.status_code == 200
    assert set(completed.json()) == {"jwt", "access-token", "signed-user-token"}

    login = requests.post(
        f"{base}/api/appuser/login",
        headers={"app-token": app_token},
        json={"handle": "ada@example.com", "password": password},
        timeout=30,
    )
    assert login.status_code == 200
    access_token = login.json()["access-token"]

    user = requests.get(f"{base}/api/appuser/getUser", headers={"access-token": access_token}, timeout=30)
    assert user.status_code == 200
    assert user.json()["handle"] == "ada@example.com"
    assert user.json()["status"] == "active"

    forgot = requests.post(
        f"{base}/api/appuser/forgotPassword",
        headers={"app-token": app_token},
        json={"handle": "ada@example.com"},
        timeout=30,
    )
    assert forgot.text == "true"
    reset_code = subprocess.run(
        f"grep -ho '<strong>[0-9]\\{{6\\}}</strong>' {outbox}/*.json | tail -1 | tr -dc 0-9",
        shell=True, capture_output=True, text=True, check=True,
    ).stdout
    reset = requests.post(
        f"{base}/api/appuser/resetPassword",
        headers={"app-token": app_token},
        json={"handle": "ada@example.com", "password": digest("my new password"), "code": reset_code},
        timeout=30,
    )
    assert reset.text == "true"
    revoked = requests.get(f"{base}/api/appuser/getUser", headers={"access-token": access_token}, timeout=30)
    assert revoked.json() == {"code": 405, "message": "invalid access token"}


def test_serve_issuer_names_served_port(served):
    base, env, _ = served
    created = _cli(env, "apps", "create", "Issuer app")
    app_id = created.stdout.splitlines()[0].split()[1]

    discovery = requests.get(f"{base}/api/apps/{app_id}/.well-known/openid-configuration", timeout=30)

    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == f"{base}/api/apps/{app_id}"
    assert discovery.json()["jwks_uri"] == f"{base}/api/apps/{app_id}/jwks.json"


def test_cli_apps_create(served):
    _, env, _ = served
    result = _cli(env, "apps", "create", "CLI app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("appId     ")
    assert lines[1].startswith("appToken  ")
    duplicate = _cli(env, "apps", "create", "CLI app")
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip().splitlines()[-1] == "error: an app named 'CLI app' already exists"


def test_cli_reports_missing_secrets(environment, tmp_path):
    env = {**os.environ, "LOCAL_SECRETS_DIR": str(tmp_path / "none")}
    result = _cli(env, "server-secret")
    assert result.returncode == 1
    assert f"secret 'server-private-key' is missing from local secret directory {tmp_path / 'none'}" in result.stderr


def test_serve_stops_when_a_secret_is_missing(environment, tmp_path):
    secrets_dir = tmp_path / "partial"
    env = {**os.environ, "LOCAL_SECRETS_DIR": str(secrets_dir)}
    assert _cli(env, "init").returncode == 0
    (secrets_dir / "encryption-key").unlink()
    result = _cli(env, "serve", "--port", str(_free_port()))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: secret 'encryption-key' is missing from local secret directory {secrets_dir}; "
        "create it (see docs/deploy.md) or run `python -m cosync init` for local development"
    )


def _import_in_function_host(**settings: str) -> subprocess.CompletedProcess:
    """Import function_app in a fresh process as the Functions host does; print the function count."""
    env = {**os.environ, "FUNCTIONS_WORKER_RUNTIME": "python", **settings}
    script = "import function_app; print(len(function_app.app.get_functions()))"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@functools.cache
def _registered_function_count() -> int:
    """Count the functions outside the host; `get_functions` may run only once per app object."""
    result = _import_in_function_host(FUNCTIONS_WORKER_RUNTIME="")
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_function_host_start_stops_without_secrets(environment, tmp_path):
    result = _import_in_function_host(LOCAL_SECRETS_DIR=str(tmp_path / "empty"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"cosync.secrets.MissingSecretError: secret 'server-private-key' is missing from local secret "
        f"directory {tmp_path / 'empty'}; create it (see docs/deploy.md) or run `python -m cosync init` "
        "for local development"
    )


def test_function_host_start_loads_secrets(environment):
    result = _import_in_function_host()

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{_registered_function_count()}\n"


def test_function_host_start_survives_unreadable_store(environment, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")

    result = _import_in_function_host(LOCAL_SECRETS_DIR=str(not_a_directory))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{_registered_function_count()}\n"
    assert "could not load the secrets at start; requests will retry" in result.stderr
