"""Helpers for the operator route tests: a client that sends the server secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from flows import audit_log


class Operator:
    """Calls /api/app routes with the server secret."""

    def __init__(self, api: Any, secret: str) -> None:
        self.api = api
        self.headers = {"server-secret": secret}

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.api.get("/api/app" + path, headers=self.headers, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.api.post("/api/app" + path, headers=self.headers, json=body or {})

    def post_form(self, path: str, form: dict[str, str]) -> requests.Response:
        return self.api.post("/api/app" + path, headers=self.headers, data=form)

    def delete(self, path: str) -> requests.Response:
        return self.api.session.delete(self.api.base_url + "/api/app" + path, headers=self.headers, timeout=30)


@pytest.fixture
def operator(api: Any, server_secret: str) -> Operator:
    return Operator(api, server_secret)


def audit_records(database: Any, app_id: str, action: str) -> list[dict[str, Any]]:
    """Return the app's operator audit records of `action`, oldest first, with `value` parsed
    and its `handle` (always null for an operator action) removed."""
    records = list(audit_log(database).find({"appId": app_id, "action": action, "logType": "app"}).sort("createdAt", 1))
    for record in records:
        record["value"] = json.loads(record["value"])
        assert record["value"].pop("handle") is None
    return records
