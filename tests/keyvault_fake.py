"""An in-process Azure Key Vault for tests: an azure-core transport and a static credential.

`FakeKeyVault` is an `HttpTransport` that the real `SecretClient` sends its requests to instead
of the network. It implements the part of the Key Vault REST API that `get_secret` uses,
including the challenge authentication handshake, and records every request.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.utils import CaseInsensitiveDict

TEST_TOKEN = "test-token"
TEST_TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
KEY_VAULT_RESOURCE = "https://vault.azure.net"


def unique_vault_url() -> str:
    """Return a new vault URL under vault.azure.net.

    The Key Vault SDK caches authentication challenges per vault host for the whole process, so a
    fresh host lets each test see the complete handshake.
    """
    return f"https://test-vault-{uuid.uuid4().hex[:8]}.vault.azure.net"


@dataclass
class TokenRequest:
    scopes: tuple[str, ...]
    tenant_id: str | None


@dataclass
class StaticTokenCredential:
    """A credential that returns a fixed token and records each token request."""

    token: str = TEST_TOKEN
    requests: list[TokenRequest] = field(default_factory=list)

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests.append(TokenRequest(scopes=scopes, tenant_id=tenant_id))
        return AccessToken(self.token, int(time.time()) + 24 * 3600)


@dataclass
class RecordedRequest:
    method: str
    url: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def secret_name(self) -> str | None:
        parts = self.path.strip("/").split("/")
        return parts[1] if len(parts) >= 2 and parts[0] == "secrets" else None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


class FakeKeyVault(HttpTransport):
    """Key Vault's `GET /secrets/{name}/{version}` served from a dictionary, without a network."""

    def __init__(self, vault_url: str, secrets: dict[str, str] | None = None) -> None:
        self.vault_url = vault_url.rstrip("/")
        self.secrets: dict[str, str] = dict(secrets or {})
        self.versions: dict[str, str] = {name: uuid.uuid4().hex for name in self.secrets}
        self.forbidden: set[str] = set()
        self.requests: list[RecordedRequest] = []

    def set_secret(self, name: str, value: str) -> None:
        """Store a new version of a secret, as `az keyvault secret set` does."""
        self.secrets[name] = value
        self.versions[name] = uuid.uuid4().hex

    def authorized_secret_names(self) -> list[str | None]:
        return [request.secret_name for request in self.requests if request.authorization]

    # HttpTransport

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        recorded = RecordedRequest(
            method=request.method, url=request.url, headers=dict(request.headers.items())
        )
        self.requests.append(recorded)

        if not request.url.startswith(self.vault_url + "/"):
            return _json_response(request, 404, _error("NotFound", f"no such vault: {request.url}"))
        if recorded.authorization != f"Bearer {TEST_TOKEN}":
            return self._challenge(request)
        if request.method != "GET" or recorded.secret_name is None:
            return _json_response(request, 405, _error("BadRequest", "only secret reads are faked"))
        return self._get_secret(request, recorded.secret_name)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeKeyVault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    # Key Vault behaviour

    def _challenge(self, request: HttpRequest) -> HttpResponse:
        # Key Vault rejects a request without a valid token with 401 and a challenge that names
        # the tenant's authority and the resource to request a token for.
        header = (
            f'Bearer authorization="https://login.microsoftonline.com/{TEST_TENANT_ID}", '
            f'resource="{KEY_VAULT_RESOURCE}"'
        )
        body = _error("Unauthorized", "Request is missing a valid bearer token.")
        return _json_response(request, 401, body, {"WWW-Authenticate": header})

    def _get_secret(self, request: HttpRequest, name: str) -> HttpResponse:
        if name in self.forbidden:
            message = f"The caller has no 'get' permission on secret {name}."
            return _json_response(request, 403, _error("Forbidden", message))
        if name not in self.secrets:
            message = f"Secret {name} does not exist in vault {self.vault_url}."
            return _json_response(request, 404, _error("SecretNotFound", message))

        body = {
            "value": self.secrets[name],
            "id": f"{self.vault_url}/secrets/{name}/{self.versions[name]}",
            "attributes": {
                "enabled": True,
                "created": 1767225600,
                "updated": 1767225600,
                "recoveryLevel": "Recoverable+Purgeable",
            },
        }
        return _json_response(request, 200, body)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json_response(
    request: HttpRequest, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    content = json.dumps(body).encode("utf-8")
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    all_headers["Content-Length"] = str(len(content))
    return InMemoryResponse(request, status, all_headers, content)


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
}


class InMemoryResponse(HttpResponse):
    """A complete `azure.core.rest.HttpResponse` whose body is already in memory."""

    def __init__(
        self, request: HttpRequest, status: int, headers: dict[str, str], content: bytes
    ) -> None:
        self._request = request
        self._status = status
        self._headers = CaseInsensitiveDict(headers)
        self._content = content
        self._closed = False

    @property
    def request(self) -> HttpRequest:
        return self._request

    @property
    def status_code(self) -> int:
        return self._status

    @property
    def headers(self) -> CaseInsensitiveDict:
        return self._headers

    @property
    def reason(self) -> str:
        return _REASONS.get(self._status, "Unknown")

    @property
    def content_type(self) -> str | None:
        return self._headers.get("Content-Type")

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def is_stream_consumed(self) -> bool:
        return True

    @property
    def encoding(self) -> str | None:
        return "utf-8"

    @encoding.setter
    def encoding(self, value: str) -> None:
        pass

    @property
    def url(self) -> str:
        return self._request.url

    @property
    def content(self) -> bytes:
        return self._content

    def text(self, encoding: str | None = None) -> str:
        return self._content.decode(encoding or "utf-8")

    def json(self) -> Any:
        return json.loads(self._content)

    def raise_for_status(self) -> None:
        from azure.core.exceptions import HttpResponseError

        if self._status >= 400:
            raise HttpResponseError(response=self)

    def read(self) -> bytes:
        return self._content

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> InMemoryResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
