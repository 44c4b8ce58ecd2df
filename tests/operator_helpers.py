"""Helpers for the operator user and transfer tests: add users and log them in over HTTP."""

from __future__ import annotations

from typing import Any

from flows import digest

PASSWORD = "correct horse"


def add_user(api: Any, server_secret: str, app: dict[str, Any], handle: str, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
    """Create a user through `POST /api/app/addUser` and return the response body."""
    response = api.post(
        "/api/app/addUser",
        headers={"server-secret": server_secret},
        json={"appId": app["appId"], "handle": handle, "password": digest(password), **fields},
    )
    assert response.status_code == 200, response.text
    return response.json()


def login(api: Any, app_token: str, handle: str, password: str = PASSWORD) -> Any:
    """Log in through `POST /api/appuser/login` and return the response."""
    return api.post(
        "/api/appuser/login",
        headers={"app-token": app_token},
        json={"handle": handle, "password": digest(password)},
    )


def session(api: Any, app_token: str, handle: str, password: str = PASSWORD) -> dict[str, str]:
    response = login(api, app_token, handle, password)
    assert response.status_code == 200, response.text
    return response.json()
