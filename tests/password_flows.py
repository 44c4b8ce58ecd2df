"""Helpers for the password and account tests: requests, reset codes and checks of stored data."""

from __future__ import annotations

from typing import Any

import pytest

from cosync.mail import read_outbox
from cosync.settings import get_settings
from flows import digest


@pytest.fixture
def quick_forgot_password(environment, monkeypatch):
    """Drop the minimum response time of forgotPassword, so that tests calling it often stay quick."""
    monkeypatch.setenv("FORGOT_PASSWORD_RESPONSE_MS", "0")
    get_settings.cache_clear()


def app_headers(app: dict[str, Any]) -> dict[str, str]:
    return {"app-token": app["appToken"]}


def forgot(api: Any, app: dict[str, Any], handle: str, headers: dict[str, str] | None = None):
    return api.post("/api/appuser/forgotPassword", headers=headers or app_headers(app), json={"handle": handle})


def reset(api: Any, app: dict[str, Any], handle: str, code: str, password: str = "new password", headers=None):
    body = {"handle": handle, "password": digest(password), "code": code}
    return api.post("/api/appuser/resetPassword", headers=headers or app_headers(app), json=body)


def login(api: Any, app: dict[str, Any], handle: str, password: str):
    body = {"handle": handle, "password": digest(password)}
    return api.post("/api/appuser/login", headers=app_headers(app), json=body)


def messages_to(address: str) -> list[dict[str, Any]]:
    return [message for message in read_outbox() if message["to"] == address]


def other_code(code: str) -> str:
    """Return a well-formed code that differs from `code`."""
    return "100000" if code != "100000" else "100001"
