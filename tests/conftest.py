"""Shared fixtures: a real MongoDB-protocol server, local secrets, and the function app over HTTP.

Without `MONGODB_URI` the session starts FerretDB on 127.0.0.1 with its data under `.data/`.
With it, the tests run against that server in a database of their own, dropped at the end.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from cosync import app_cache, audit, db, localdb, secrets
from cosync.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    with localdb.running(ROOT / ".data" / f"test-ferretdb-{os.getpid()}") as uri:
        yield uri


@pytest.fixture(scope="session")
def server_environment(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables for a server under test; each test applies them afresh."""
    secrets_dir = tmp_path_factory.mktemp("secrets")
    secrets.create_local_secrets(secrets_dir)
    return {
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DATABASE": f"cosync_test_{uuid.uuid4().hex[:8]}",
        "LOCAL_SECRETS_DIR": str(secrets_dir),
        "OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
        "PUBLIC_BASE_URL": "http://127.0.0.1:7071",
    }


@pytest.fixture(scope="session", autouse=True)
def drop_test_database(server_environment: dict[str, str]) -> Iterator[None]:
    yield
    _drop_database(server_environment["MONGODB_URI"], server_environment["MONGODB_DATABASE"])


def _drop_database(uri: str, name: str) -> None:
    import pymongo

    # A record written after the drop would create the database again.
    audit.flush()

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture(scope="module")
def module_database(server_environment: dict[str, str]) -> Iterator[str]:
    """A database of its own for each test module, dropped when the module ends.

    FerretDB scans a collection for many queries, so one database shared by the whole session
    makes every test slower than the one before it.
    """
    name = f"{server_environment['MONGODB_DATABASE']}_{uuid.uuid4().hex[:6]}"
    yield name
    _drop_database(server_environment["MONGODB_URI"], name)


@pytest.fixture(autouse=True)
def environment(
    server_environment: dict[str, str],
    module_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Apply the test server's settings and drop every cache of settings or secrets.

    Each test gets its own outbox folder, so reading the outbox costs the same in every test.
    """
    for name in ("KEY_VAULT_URL", "SENDGRID_API_HOST", "SECRETS_CACHE_SECONDS", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    applied = {
        **server_environment,
        "MONGODB_DATABASE": module_database,
        "OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
    }
    for name, value in applied.items():
        monkeypatch.setenv(name, value)
    # Many tests change app documents directly in the database, which a cached copy would hide;
    # tests of the cache turn it on themselves.
    monkeypatch.setenv("APP_CACHE_SECONDS", "0")
    reset_caches()
    yield applied
    reset_caches()


KEY_POOL_SIZE = 16


@pytest.fixture(scope="session")
def app_key_pool() -> Iterator[tuple[str, str]]:
    """App key pairs made once per session by the server's own `generate_app_key_pair`.

    The pairs come out in turn across the whole session, so any 16 keys handed out one after
    the other are all different.
    """
    import function_app  # noqa: F401  (loads every module that creates keys)
    from cosync.keys import generate_app_key_pair

    return itertools.cycle([generate_app_key_pair() for _ in range(KEY_POOL_SIZE)])


@pytest.fixture(autouse=True)
def reuse_app_keys(app_key_pool: Iterator[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand out pooled key pairs wherever the server creates an app key.

    RSA key generation takes a few hundred milliseconds and most tests create an app, so
    generating a key each time made it the largest single cost of the suite. Tests of key
    generation import the function itself and get fresh keys.
    """
    import sys

    from cosync import keys

    original = keys.generate_app_key_pair

    def pooled_key_pair() -> tuple[str, str]:
        return next(app_key_pool)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("cosync") and getattr(module, "generate_app_key_pair", None) is original:
            monkeypatch.setattr(module, "generate_app_key_pair", pooled_key_pair)


def reset_caches() -> None:
    settings_before = get_settings.cache_info().currsize and get_settings()
    get_settings.cache_clear()
    secrets.use_source(None)
    app_cache.forget()
    try:
        uri_now = get_settings().mongodb_uri
    except Exception:
        uri_now = None
    if not settings_before or settings_before.mongodb_uri != uri_now:
        db.reset_client()


@pytest.fixture(scope="module")
def counter():
    """A pymongo CommandListener (`bench/harness.py`) on a fresh cached client."""
    from pymongo import monitoring

    from harness import CommandCounter

    listener = CommandCounter()
    # Only clients created after registering report to the listener, so the cached one goes.
    monitoring.register(listener)
    db.reset_client()
    return listener


@pytest.fixture
def database(environment: dict[str, str]):
    return db.get_database()


def serve_in_thread(app) -> Iterator[str]:
    """Serve a FunctionApp with the development server on a free 127.0.0.1 port; yield its URL."""
    from cosync.devserver import FunctionHttpServer

    server = FunctionHttpServer(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def api_server(server_environment: dict[str, str]) -> Iterator[str]:
    """The function app served over real HTTP by the development server on 127.0.0.1."""
    from function_app import app

    yield from serve_in_thread(app)


class Api:
    """A small HTTP client for the function app under test."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=30, **kwargs)


@pytest.fixture
def api(api_server: str, environment: dict[str, str]) -> Api:
    return Api(api_server)


@pytest.fixture
def server_secret(environment: dict[str, str]) -> str:
    from cosync.tokens import issue_server_secret

    return issue_server_secret()


@pytest.fixture
def new_app(api: Api, server_secret: str):
    """Create an app through the operator route; keyword arguments set app fields directly."""

    def create(**fields: Any) -> dict[str, Any]:
        response = api.post("/api/app", json={"name": f"Test app {uuid.uuid4().hex[:8]}"}, headers={"server-secret": server_secret})
        assert response.status_code == 200, response.text
        app = response.json()
        if fields:
            db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": fields})
        return app

    return create
