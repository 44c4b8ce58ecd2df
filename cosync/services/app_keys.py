"""Per-app signing keys: the keys a verifier may trust, rotation with overlap, and the JWT `aud`.

The current key pair is in `appPrivateKey` and `appPublicKey`, as in CosyncJWT. A rotation moves
the public half of the replaced key into `appRetiredKeys`, where it stays published in the JWK
Set until every user JWT it signed has expired.

Every request reads the app document, and parsed keys are cached by their stored value. So every
worker signs with a new key from its next request on, without waiting for a cache to expire.
"""

from __future__ import annotations

import datetime
from typing import Any

import jwt

from cosync import app_cache, audit, db, errors
from cosync.crypto import encrypt_field
from cosync.dates import iso, utc_now
from cosync.errors import ApiError
from cosync.keys import generate_app_key_pair, load_app_public_key, seal_app_key, signing_jwk, thumbprint, unseal_app_key
from cosync.secrets import get_secrets
from cosync.services.apps import check_app_active, load_app
from cosync.tokens import issue_app_secret, issue_app_token, server_public_key, user_jwt_audience, user_jwt_lifetime_seconds

RETIRED_KEYS = "appRetiredKeys"
# Time added to the longest user JWT lifetime before a replaced key leaves the JWK Set. It
# covers requests that read the old key just before the rotation and clock skew at verifiers.
RETIREMENT_MARGIN = datetime.timedelta(minutes=10)
MAX_AUDIENCE_LENGTH = 256


def load_published_app(app_id: str) -> dict[str, Any]:
    """Return an active app for its public documents; raise HTTP 404 for an unknown or suspended one."""
    try:
        app = load_app(app_id)
        check_app_active(app)
    except ApiError as error:
        raise ApiError(error.error, error.detail, status=404) from None
    return app


def current_public_key64(app: dict[str, Any]) -> str:
    """Return the app's current public key as base64 of SPKI PEM, the legacy `appPublicKey` form."""
    return unseal_app_key(get_secrets().encryption_key, app["appPublicKey"], app["appId"], "appPublicKey")


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)


def live_retired_keys(app: dict[str, Any], now: datetime.datetime) -> list[dict[str, Any]]:
    """Return the replaced keys whose user JWTs may still be unexpired at `now`."""
    entries = app.get(RETIRED_KEYS)
    if not isinstance(entries, list):
        return []
    return [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("publishedUntil"), datetime.datetime)
        and _as_utc(entry["publishedUntil"]) > now
    ]


def jwk_set(app: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """Return the app's JWK Set (RFC 7517 §5): the current key first, then the live replaced keys."""
    published = [current_public_key64(app)] + [entry["publicKey"] for entry in live_retired_keys(app, now)]
    return {"keys": [signing_jwk(load_app_public_key(key64)) for key64 in published]}


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        raise ApiError(errors.INVALID_DATA, f"{name} must be true or false")
    return value


def rotate_app_key(app_id: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Give the app a new RSA-2048 key pair that signs every user JWT from now on.

    The replaced public key stays in the JWK Set for the app's user JWT lifetime plus
    RETIREMENT_MARGIN. With `revokePrevious` every earlier key leaves the JWK Set at once, so
    the tokens they signed stop verifying (for a leaked private key).
    """
    if not isinstance(app_id, str) or not app_id:
        raise ApiError(errors.MISSING_PARAM, "appId is required")
    revoke_previous = _flag(body, "revokePrevious")
    app = load_app(app_id)
    now = utc_now()

    retired = [] if revoke_previous else live_retired_keys(app, now)
    if not revoke_previous:
        replaced = current_public_key64(app)
        lifetime = datetime.timedelta(seconds=user_jwt_lifetime_seconds(app))
        retired.append({
            "publicKey": replaced,
            "kid": thumbprint(load_app_public_key(replaced)),
            "retiredAt": now,
            "publishedUntil": now + lifetime + RETIREMENT_MARGIN,
        })

    secret = get_secrets().encryption_key
    private_key64, public_key64 = generate_app_key_pair()
    changes = {
        "appPrivateKey": seal_app_key(secret, private_key64, app_id, "appPrivateKey"),
        "appPublicKey": seal_app_key(secret, public_key64, app_id, "appPublicKey"),
        RETIRED_KEYS: retired,
        "updatedAt": now,
    }
    # Matching the stored private key makes a concurrent rotation fail instead of dropping the
    # key that the other one installed. NOTE: FerretDB 1.x does not isolate this update.
    result = db.collection(db.APPS).update_one({"appId": app_id, "appPrivateKey": app["appPrivateKey"]}, {"$set": changes})
    app_cache.forget(app_id)
    if result.matched_count == 0:
        raise ApiError(errors.INVALID_DATA, f"the key of app {app_id} changed during the rotation; retry")

    kid = thumbprint(load_app_public_key(public_key64))
    audit.record(app_id, "rotateAppKey", "success", log_type="app", kid=kid, revokePrevious=revoke_previous)
    return {
        "appId": app_id,
        "kid": kid,
        "appPublicKey": public_key64,
        "previousKeys": [{"kid": entry["kid"], "publishedUntil": iso(entry["publishedUntil"])} for entry in retired],
    }


def validate_audience(value: Any) -> str | None:
    """Return a valid `aud` value, or None for null or "" (back to the CosyncJWT default)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(errors.INVALID_DATA, "jwtAudience must be a string")
    if len(value) > MAX_AUDIENCE_LENGTH or any(character.isspace() or not character.isprintable() for character in value):
        raise ApiError(
            errors.INVALID_DATA,
            f"jwtAudience must be at most {MAX_AUDIENCE_LENGTH} printable characters without spaces",
        )
    return value


def set_jwt_audience(app_id: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Set the `aud` claim of the app's user JWTs; null or "" restores the CosyncJWT default."""
    if not isinstance(app_id, str) or not app_id:
        raise ApiError(errors.MISSING_PARAM, "appId is required")
    if "jwtAudience" not in body:
        raise ApiError(errors.MISSING_PARAM, "jwtAudience is required (null restores the default)")
    audience = validate_audience(body["jwtAudience"])
    app = load_app(app_id)

    update = {"$set": {"jwtAudience": audience, "updatedAt": utc_now()}}
    db.collection(db.APPS).update_one({"appId": app_id}, update)
    app_cache.forget(app_id)
    audit.record(app_id, "setJwtAudience", "success", log_type="app", jwtAudience=audience)
    return {"appId": app_id, "jwtAudience": audience, "aud": user_jwt_audience({**app, "jwtAudience": audience})}


def reissue_app_tokens() -> list[str]:
    """Sign every stored app token and app secret again with the current server key.

    Run after a server key rotation: clients then need the new `appToken` (from the operator
    API) before the previous server key's overlap ends. Apps whose token already names the
    current key are left alone, so a second run changes nothing. Return the app ids changed.
    """
    current_kid = thumbprint(server_public_key())
    secret = get_secrets().encryption_key
    apps = db.collection(db.APPS)
    changed = []
    for app in apps.find({}, {"appId": 1, "appToken": 1}):
        app_id = app.get("appId")
        if not isinstance(app_id, str) or _token_kid(app.get("appToken")) == current_kid:
            continue
        changes = {
            "appToken": issue_app_token(app_id),
            "appSecret": encrypt_field(secret, issue_app_secret(app_id), f"apps.appSecret:{app_id}"),
            "updatedAt": utc_now(),
        }
        apps.update_one({"_id": app["_id"]}, {"$set": changes})
        app_cache.forget(app_id)
        audit.record(app_id, "reissueAppToken", "success", log_type="app", kid=current_kid)
        changed.append(app_id)
    return changed


def _token_kid(token: Any) -> str | None:
    try:
        return jwt.get_unverified_header(token).get("kid") if isinstance(token, str) else None
    except jwt.PyJWTError:
        return None
