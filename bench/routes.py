"""Database commands per end-user route, counted on a warm instance.

Each scenario prepares what its request needs (users, codes), then counts the commands of that
one request. Every scenario runs twice with fresh data and the second run is reported, so
the app document, the e-mail templates and the rate-limit slot guesses are already cached, as
on a worker that has served requests before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

from cosync import app_cache, db
from cosync.services.apps import create_app

from harness import CommandCounter, FunctionClient, Reply, digest, latest_code

PASSWORD = "correct horse"


@dataclass
class RouteCount:
    route: str
    case: str
    status: int
    commands: list[str]
    after_response: list[str]


class Scenarios:
    """The apps and users that the route scenarios share."""

    def __init__(self, client: FunctionClient, counter: CommandCounter) -> None:
        self.client = client
        self.counter = counter
        nickname = {"id": "1", "path": "nickname", "fieldName": "nickname", "required": False, "canEdit": True}
        self.app = self._new_app(userNamesEnabled=True, anonymousLoginEnabled=True, metaData=[nickname])
        self.open_app = self._new_app(signupFlow="none")

    def _new_app(self, **fields: Any) -> dict[str, Any]:
        app = create_app(f"bench {uuid.uuid4().hex[:8]}")
        db.collection(db.APPS).update_one({"appId": app["appId"]}, {"$set": fields})
        app_cache.forget(app["appId"])
        return app

    def app_headers(self, app: dict[str, Any] | None = None) -> dict[str, str]:
        return {"app-token": (app or self.app)["appToken"]}

    def new_handle(self) -> str:
        return f"user-{uuid.uuid4().hex[:12]}@example.com"

    def register(self) -> tuple[str, dict[str, Any]]:
        """Sign a new user up on the main app; return its handle and session."""
        handle = self.new_handle()
        self._expect(self.client.call("signup", {"handle": handle, "password": digest(PASSWORD)}, headers=self.app_headers()))
        code = latest_code(handle)
        session = self._expect(self.client.call("completeSignup", {"handle": handle, "code": code}, headers=self.app_headers()))
        return handle, session.body

    def count(self, route: str, case: str, request: Callable[[], Reply], expected_status: int = 200) -> RouteCount:
        """Count the commands of `request`, which must return `expected_status`."""
        with self.counter.counting() as commands:
            reply = request()
        if reply.status != expected_status:
            raise RuntimeError(f"{route} ({case}) returned HTTP {reply.status} {reply.body!r}, expected {expected_status}")
        return RouteCount(route, case, reply.status, commands.request, commands.after_response)

    @staticmethod
    def _expect(reply: Reply) -> Reply:
        if reply.status != 200:
            raise RuntimeError(f"set-up request failed with {reply.status} {reply.body!r}")
        return reply


def _user_headers(session: dict[str, Any]) -> dict[str, str]:
    return {"access-token": session["access-token"]}


def get_application(s: Scenarios) -> RouteCount:
    return s.count("getApplication", "app token", lambda: s.client.call("getApplication", headers=s.app_headers()))


def signup_code(s: Scenarios) -> RouteCount:
    body = {"handle": s.new_handle(), "password": digest(PASSWORD)}
    return s.count("signup", "flow code, new handle", lambda: s.client.call("signup", body, headers=s.app_headers()))


def signup_none(s: Scenarios) -> RouteCount:
    body = {"handle": s.new_handle(), "password": digest(PASSWORD)}
    headers = s.app_headers(s.open_app)
    return s.count("signup", "flow none, new handle", lambda: s.client.call("signup", body, headers=headers))


def complete_signup(s: Scenarios) -> RouteCount:
    handle = s.new_handle()
    s.client.call("signup", {"handle": handle, "password": digest(PASSWORD)}, headers=s.app_headers())
    body = {"handle": handle, "code": latest_code(handle)}
    return s.count("completeSignup", "right code", lambda: s.client.call("completeSignup", body, headers=s.app_headers()))


def login(s: Scenarios) -> RouteCount:
    handle, _ = s.register()
    body = {"handle": handle, "password": digest(PASSWORD)}
    return s.count("login", "right password", lambda: s.client.call("login", body, headers=s.app_headers()))


def login_wrong_password(s: Scenarios) -> RouteCount:
    handle, _ = s.register()
    body = {"handle": handle, "password": digest("wrong")}
    call = lambda: s.client.call("login", body, headers=s.app_headers())  # noqa: E731
    return s.count("login", "wrong password", call, expected_status=400)


def get_user(s: Scenarios) -> RouteCount:
    _, session = s.register()
    return s.count("getUser", "access token", lambda: s.client.call("getUser", headers=_user_headers(session)))


def set_locale(s: Scenarios) -> RouteCount:
    _, session = s.register()
    call = lambda: s.client.call("setLocale", {"locale": "EN"}, headers=_user_headers(session))  # noqa: E731
    return s.count("setLocale", "EN", call)


def set_user_metadata(s: Scenarios) -> RouteCount:
    _, session = s.register()
    body = {"metaData": {"nickname": "bench"}}
    return s.count("setUserMetadata", "one field", lambda: s.client.call("setUserMetadata", body, headers=_user_headers(session)))


def set_user_name(s: Scenarios) -> RouteCount:
    _, session = s.register()
    body = {"userName": f"name{uuid.uuid4().hex[:10]}"}
    return s.count("setUserName", "free name", lambda: s.client.call("setUserName", body, headers=_user_headers(session)))


def user_name_available(s: Scenarios) -> RouteCount:
    _, session = s.register()
    params = {"userName": f"name{uuid.uuid4().hex[:10]}"}
    call = lambda: s.client.call("userNameAvailable", headers=_user_headers(session), params=params)  # noqa: E731
    return s.count("userNameAvailable", "free name", call)


def change_password(s: Scenarios) -> RouteCount:
    _, session = s.register()
    body = {"password": digest(PASSWORD), "newPassword": digest("another horse")}
    return s.count("changePassword", "right password", lambda: s.client.call("changePassword", body, headers=_user_headers(session)))


def forgot_password(s: Scenarios) -> RouteCount:
    handle, _ = s.register()
    call = lambda: s.client.call("forgotPassword", {"handle": handle}, headers=s.app_headers())  # noqa: E731
    return s.count("forgotPassword", "existing handle", call)


def reset_password(s: Scenarios) -> RouteCount:
    handle, _ = s.register()
    s.client.call("forgotPassword", {"handle": handle}, headers=s.app_headers())
    body = {"handle": handle, "code": latest_code(handle), "password": digest("another horse")}
    return s.count("resetPassword", "right code", lambda: s.client.call("resetPassword", body, headers=s.app_headers()))


def invite(s: Scenarios) -> RouteCount:
    _, session = s.register()
    body = {"handle": s.new_handle()}
    return s.count("invite", "new handle", lambda: s.client.call("invite", body, headers=_user_headers(session)))


def register_invited(s: Scenarios) -> RouteCount:
    _, session = s.register()
    handle = s.new_handle()
    s.client.call("invite", {"handle": handle}, headers=_user_headers(session))
    body = {"handle": handle, "code": latest_code(handle), "password": digest(PASSWORD)}
    return s.count("register", "right code", lambda: s.client.call("register", body, headers=s.app_headers()))


def login_anonymous(s: Scenarios) -> RouteCount:
    body = {"handle": f"ANON_{uuid.uuid4().hex}"}
    return s.count("loginAnonymous", "new handle", lambda: s.client.call("loginAnonymous", body, headers=s.app_headers()))


def delete_account(s: Scenarios) -> RouteCount:
    handle, session = s.register()
    body = {"handle": handle, "password": digest(PASSWORD)}
    return s.count("deleteAccount", "right password", lambda: s.client.call("deleteAccount", body, headers=_user_headers(session)))


def jwks(s: Scenarios) -> RouteCount:
    call = lambda: s.client.call("jwks", route_params={"appId": s.app["appId"]})  # noqa: E731
    return s.count("jwks.json", "app key set", call)


def openid_configuration(s: Scenarios) -> RouteCount:
    call = lambda: s.client.call("openidConfiguration", route_params={"appId": s.app["appId"]})  # noqa: E731
    return s.count("openid-configuration", "discovery document", call)


SCENARIOS: list[Callable[[Scenarios], RouteCount]] = [
    get_application,
    signup_code,
    signup_none,
    complete_signup,
    login,
    login_wrong_password,
    get_user,
    set_locale,
    set_user_metadata,
    set_user_name,
    user_name_available,
    change_password,
    forgot_password,
    reset_password,
    invite,
    register_invited,
    login_anonymous,
    delete_account,
    jwks,
    openid_configuration,
]


def count_commands(scenarios: Scenarios, warm_up: bool = True) -> list[RouteCount]:
    """Run every scenario and return its counts; with `warm_up`, run it once before, uncounted."""
    results = []
    for scenario in SCENARIOS:
        if warm_up:
            scenario(scenarios)
        results.append(scenario(scenarios))
    return results
