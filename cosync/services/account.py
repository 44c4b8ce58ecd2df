"""Account deletion (`deleteAccount`).

The caller proves the account twice: with the access token, and with the password of that
same account, or for Apple and Google accounts with an ID token of that same identity.

Deleting removes the user and the records kept for their handle: sign-up, sign-up codes,
reset and SMS codes, the claim on their user name, and invitations. The audit log stays, as
the operator's record.

Every access token of the account stops working: the user document is gone, and a later
account with the same handle refuses tokens issued before it was created (see
`cosync.services.users.load_user`).
"""

from __future__ import annotations

from typing import Any

from cosync import audit, db, errors, ratelimit
from cosync.auth import Caller
from cosync.crypto import verify_password
from cosync.errors import ApiError
from cosync.services.apps import load_active_app, setting
from cosync.services.social import verify_identity
from cosync.services.users import delete_user, load_user
from cosync.validation import normalise_handle, optional_text

SOCIAL_PROVIDERS = ("apple", "google")


def delete_account(caller: Caller, body: dict[str, Any]) -> bool:
    """Delete the caller's account after checking its password or ID token."""
    identifier = optional_text(body, "handle")
    password = optional_text(body, "password")
    token = optional_text(body, "token")
    if not (identifier or password or token):
        raise ApiError(errors.MISSING_PARAM, "handle and password, or token, are required")
    app = load_active_app(caller.app_id)
    user = load_user(caller)
    if user.get("status", "active") != "active":
        raise ApiError(errors.USER_IS_SUSPENDED, f"account status is {user.get('status')!r}")

    if identifier and password:
        _check_password(app, user, normalise_handle(identifier), password)
    elif token:
        _check_id_token(app, user, token)
    else:
        raise ApiError(errors.INVALID_DATA, "handle without password, or password without handle")

    _delete_user_records(caller.app_id, user)
    audit.record(caller.app_id, "deleteAccount", "success", user["handle"])
    return True


def _check_password(app: dict[str, Any], user: dict[str, Any], identifier: str, password: str) -> None:
    """Raise INVALID_CREDENTIALS unless `identifier` names the caller and `password` is theirs.

    Guesses count against the login limit of the handle, like a login.
    """
    if "@" not in identifier and not setting(app, "userNamesEnabled"):
        raise ApiError(errors.APP_ISNOT_USERNAME_LOGIN, "user names are off for this app")
    if identifier not in (user["handle"], user.get("userName")):
        raise ApiError(errors.INVALID_CREDENTIALS, "handle does not name the caller's account")
    ratelimit.hit(ratelimit.LOGIN_PER_HANDLE, f"{app['appId']}:{user['handle']}")
    if not verify_password(password, user.get("password"))[0]:
        audit.record(app["appId"], "deleteAccount", "error", user["handle"], code=errors.INVALID_CREDENTIALS.code)
        raise ApiError(errors.INVALID_CREDENTIALS, "wrong password")


def _check_id_token(app: dict[str, Any], user: dict[str, Any], token: str) -> None:
    """Raise unless `token` is a valid ID token of the caller's own Apple or Google identity.

    CosyncJWT deleted whichever account held the token's `sub`, so one user's token could
    delete another account; here the token must name the caller.
    """
    provider = user.get("loginProvider")
    if provider not in SOCIAL_PROVIDERS:
        raise ApiError(errors.INVALID_DATA, "the account does not sign in with Apple or Google")
    identity = verify_identity(app, provider, token, "deleteAccount")
    if identity.subject != user.get("socialUserId"):
        audit.record(app["appId"], "deleteAccount", "error", user["handle"], code=errors.TOKEN_IS_INVALID.code)
        raise ApiError(errors.TOKEN_IS_INVALID, "ID token names another identity than the caller's")


def _delete_user_records(app_id: str, user: dict[str, Any]) -> None:
    delete_user(user)
    # Also the invitations the user sent that are still pending, so nobody registers through them.
    db.collection(db.INVITES).delete_many({"appId": app_id, "senderHandle": user["handle"], "status": "pending"})
