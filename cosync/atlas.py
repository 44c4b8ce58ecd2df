"""A small client for the project IP access list of the MongoDB Atlas Administration API v2.

It authenticates with a programmatic API key (public and private key) through HTTP digest
authentication, and requests the 2023-01-01 version of the API through the versioned media
type in the Accept header. The key needs the Project Owner role to change the access list.

`allow_address` is the operation behind `python -m cosync atlas allow-ip`: it adds one address
and, on request, removes the "allow access from anywhere" entry, changing only what differs.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

import requests
from requests.auth import HTTPDigestAuth

DEFAULT_BASE_URL = "https://cloud.mongodb.com"
MEDIA_TYPE = "application/vnd.atlas.2023-01-01+json"
ANYWHERE = "0.0.0.0/0"
TIMEOUT_SECONDS = 30.0

# The list endpoint returns at most 500 entries per page.
PAGE_SIZE = 500


class AtlasError(Exception):
    """A request to the Atlas Administration API failed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AccessListEntry:
    """One entry of a project IP access list: a CIDR block and its comment."""

    cidr_block: str
    comment: str = ""


@dataclass(frozen=True)
class Change:
    """The outcome of `allow_address` for one entry: the action taken, or "unchanged"."""

    action: str  # "added", "removed" or "unchanged"
    cidr_block: str
    present: bool  # whether the entry is on the access list afterwards


def to_cidr_block(address: str) -> str:
    """Return the CIDR block for an IP address or CIDR block, such as "203.0.113.7/32".

    Raises ValueError when `address` is neither.
    """
    if "/" in address:
        return str(ipaddress.ip_network(address, strict=True))
    parsed = ipaddress.ip_address(address)
    return f"{parsed}/{parsed.max_prefixlen}"


def _same_block(left: str, right: str) -> bool:
    try:
        return ipaddress.ip_network(left, strict=False) == ipaddress.ip_network(right, strict=False)
    except ValueError:
        return left == right


class AtlasClient:
    """Calls the project IP access list endpoints of the Atlas Administration API v2."""

    def __init__(
        self,
        public_key: str,
        private_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(public_key, private_key)
        self.session.headers["Accept"] = MEDIA_TYPE

    def list_access_list(self, project_id: str) -> list[AccessListEntry]:
        """Return every entry of the project's IP access list, reading all pages."""
        entries: list[AccessListEntry] = []
        page_number = 1
        while True:
            body = self._request(
                "GET",
                self._access_list_path(project_id),
                params={"itemsPerPage": PAGE_SIZE, "pageNum": page_number},
            )
            results = body.get("results", []) if isinstance(body, dict) else []
            for result in results:
                cidr_block = result.get("cidrBlock") or result.get("ipAddress")
                if cidr_block:
                    entries.append(AccessListEntry(cidr_block, result.get("comment", "")))
            if len(results) < PAGE_SIZE:
                return entries
            page_number += 1

    def add_access_list_entries(self, project_id: str, entries: list[AccessListEntry]) -> None:
        """Add entries to the project's IP access list in one request."""
        payload = [{"cidrBlock": entry.cidr_block, "comment": entry.comment} for entry in entries]
        self._request("POST", self._access_list_path(project_id), json=payload)

    def delete_access_list_entry(self, project_id: str, cidr_block: str) -> None:
        """Delete one entry, named by its IP address or CIDR block, from the access list."""
        # The entry value is one path segment, so its slash is sent as %2F.
        entry_value = urllib.parse.quote(cidr_block, safe="")
        self._request("DELETE", f"{self._access_list_path(project_id)}/{entry_value}")

    def _access_list_path(self, project_id: str) -> str:
        return f"/api/atlas/v2/groups/{urllib.parse.quote(project_id, safe='')}/accessList"

    def _request(self, method: str, path: str, **kwargs) -> object:
        url = f"{self.base_url}{path}"
        headers = {"Content-Type": MEDIA_TYPE} if "json" in kwargs else {}
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise AtlasError(f"request to the Atlas API at {self.base_url} failed: {error}") from None

        if response.status_code >= 400:
            raise AtlasError(_describe_failure(method, response), response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AtlasError(
                f"Atlas API {method} {path} returned a body that is not JSON (HTTP {response.status_code})"
            ) from None


def _describe_failure(method: str, response: requests.Response) -> str:
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("errorCode") or "")
    except ValueError:
        pass
    suffix = f": {detail}" if detail else ""

    if response.status_code == 401:
        return (
            "Atlas rejected the API key (HTTP 401): check ATLAS_PUBLIC_KEY and ATLAS_PRIVATE_KEY"
            f"{suffix}"
        )
    if response.status_code == 403:
        return (
            "Atlas refused the request (HTTP 403): the API key needs the Project Owner role, and "
            f"this machine's address must be on the API key's own access list{suffix}"
        )
    if response.status_code == 404:
        return f"Atlas found no such project or entry (HTTP 404): check ATLAS_PROJECT_ID{suffix}"
    return f"Atlas API {method} request failed with HTTP {response.status_code}{suffix}"


def allow_address(
    client: AtlasClient,
    project_id: str,
    address: str,
    comment: str,
    remove_anywhere: bool = False,
) -> list[Change]:
    """Put `address` on the project's access list and, on request, remove 0.0.0.0/0.

    Changes only what differs from the expected state, so running it again changes nothing. The
    address is added before 0.0.0.0/0 is removed, so a failed addition never leaves the
    deployment without access. Raises ValueError for an invalid address and AtlasError when
    Atlas rejects a request.
    """
    cidr_block = to_cidr_block(address)
    if _same_block(cidr_block, ANYWHERE):
        raise ValueError(f"{address} would allow every address; give the deployment's outbound IP")

    existing = client.list_access_list(project_id)
    changes: list[Change] = []

    if any(_same_block(entry.cidr_block, cidr_block) for entry in existing):
        changes.append(Change("unchanged", cidr_block, present=True))
    else:
        client.add_access_list_entries(project_id, [AccessListEntry(cidr_block, comment)])
        changes.append(Change("added", cidr_block, present=True))

    if remove_anywhere:
        if any(_same_block(entry.cidr_block, ANYWHERE) for entry in existing):
            client.delete_access_list_entry(project_id, ANYWHERE)
            changes.append(Change("removed", ANYWHERE, present=False))
        else:
            changes.append(Change("unchanged", ANYWHERE, present=False))

    return changes
