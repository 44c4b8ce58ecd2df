"""`python -m cosync atlas allow-ip` against a local server that plays the Atlas Administration API.

The fake listens on 127.0.0.1 only. Like Atlas, it responds to a request without credentials
with an HTTP digest challenge (RFC 7616, MD5 with qop=auth) and checks the digest response
against the API key. It serves the project IP access list under
/api/atlas/v2/groups/{groupId}/accessList when the Accept header names the 2023-01-01 API version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
PROJECT_ID = "5f1e2d3c4b5a69788796a5b4"
PUBLIC_KEY = "abcdefgh"
PRIVATE_KEY = "3f2a9c1e-7b6d-4e5f-8a9b-0c1d2e3f4a5b"
OUTBOUND_IP = "203.0.113.7"
MEDIA_TYPE = "application/vnd.atlas.2023-01-01+json"
REALM = "MMS Public API"
ACCESS_LIST_PATH = f"/api/atlas/v2/groups/{PROJECT_ID}/accessList"
WHERE = f"the access list of Atlas project {PROJECT_ID}"


@dataclass
class RecordedRequest:
    method: str
    path: str
    authorized: bool
    status: int
    accept: str
    content_type: str
    body: object = None


@dataclass
class FakeAtlas:
    """State of the fake: the access list per project and every request it received."""

    entries: dict[str, list[dict]] = field(default_factory=lambda: {PROJECT_ID: []})
    requests: list[RecordedRequest] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    base_url: str = ""

    def cidr_blocks(self, project_id: str = PROJECT_ID) -> list[str]:
        return [entry["cidrBlock"] for entry in self.entries[project_id]]

    def calls(self, method: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == method and request.authorized]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _parse_digest(header: str) -> dict[str, str]:
    fields = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header[len("Digest "):])
    return {name: quoted or bare for name, quoted, bare in fields}


def make_handler(state: FakeAtlas) -> type[BaseHTTPRequestHandler]:
    class AtlasHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length else b""
            body = json.loads(raw_body) if raw_body else None
            authorized = self._authorized()
            if not authorized:
                status = self._challenge()
            elif self.headers.get("Accept") != MEDIA_TYPE:
                status = self._error(406, "INVALID_VERSION", "Accept header names no API version")
            else:
                status = self._route(body)
            state.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self.path,
                    authorized=authorized,
                    status=status,
                    accept=self.headers.get("Accept", ""),
                    content_type=self.headers.get("Content-Type", ""),
                    body=body,
                )
            )

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Digest "):
                return False
            digest = _parse_digest(header)
            if digest.get("username") != PUBLIC_KEY or digest.get("nonce") not in state.nonces:
                return False
            if digest.get("uri") != self.path or digest.get("qop") != "auth":
                return False
            first_hash = _md5(f"{PUBLIC_KEY}:{REALM}:{PRIVATE_KEY}")
            second_hash = _md5(f"{self.command}:{digest['uri']}")
            expected = _md5(
                f"{first_hash}:{digest['nonce']}:{digest.get('nc')}:{digest.get('cnonce')}:auth:{second_hash}"
            )
            return secrets.compare_digest(expected, digest.get("response", ""))

        def _challenge(self) -> int:
            nonce = secrets.token_hex(16)
            state.nonces.add(nonce)
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Digest realm="{REALM}", domain="", nonce="{nonce}", algorithm=MD5, qop="auth", stale=false',
            )
            payload = json.dumps({"detail": "You are not authorized for this resource.", "error": 401,
                                  "errorCode": "NOT_AUTHORIZED", "reason": "Unauthorized"}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return 401

        def _route(self, body: object) -> int:
            parsed = urllib.parse.urlsplit(self.path)
            match = re.fullmatch(r"/api/atlas/v2/groups/([^/]+)/accessList(?:/([^/]+))?", parsed.path)
            if not match or match.group(1) not in state.entries:
                return self._error(404, "GROUP_NOT_FOUND", "No group with the given id exists.")
            project_entries = state.entries[match.group(1)]
            entry_value = urllib.parse.unquote(match.group(2)) if match.group(2) else None

            if self.command == "GET" and entry_value is None:
                query = urllib.parse.parse_qs(parsed.query)
                page_size = int(query.get("itemsPerPage", ["100"])[0])
                page_number = int(query.get("pageNum", ["1"])[0])
                start = (page_number - 1) * page_size
                page = project_entries[start:start + page_size]
                return self._json(200, {"results": page, "totalCount": len(project_entries), "links": []})
            if self.command == "POST" and entry_value is None:
                for item in body:
                    project_entries.append({"cidrBlock": item["cidrBlock"], "comment": item.get("comment", ""),
                                            "groupId": match.group(1)})
                return self._json(201, {"results": project_entries, "totalCount": len(project_entries)})
            if self.command == "DELETE" and entry_value is not None:
                for entry in project_entries:
                    if entry["cidrBlock"] == entry_value:
                        project_entries.remove(entry)
                        self.send_response(204)
                        self.end_headers()
                        return 204
                return self._error(404, "ATLAS_NETWORK_PERMISSION_ENTRY_NOT_FOUND", "Entry not found.")
            return self._error(405, "METHOD_NOT_ALLOWED", "Method not allowed.")

        def _error(self, status: int, error_code: str, detail: str) -> int:
            return self._json(status, {"detail": detail, "error": status, "errorCode": error_code})

        def _json(self, status: int, payload: object) -> int:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", MEDIA_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return status

    return AtlasHandler


@pytest.fixture
def atlas() -> FakeAtlas:
    state = FakeAtlas()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_cli(atlas: FakeAtlas, *arguments: str, private_key: str = PRIVATE_KEY,
            extra_environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        name: value for name, value in os.environ.items()
        if not name.startswith("ATLAS_") and name != "AZURE_OUTBOUND_IP" and "proxy" not in name.lower()
    }
    environment.update({
        "ATLAS_API_BASE_URL": atlas.base_url,
        "ATLAS_PUBLIC_KEY": PUBLIC_KEY,
        "ATLAS_PRIVATE_KEY": private_key,
        "ATLAS_PROJECT_ID": PROJECT_ID,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONPATH": str(REPOSITORY),
    })
    environment.update(extra_environment or {})
    return subprocess.run(
        [sys.executable, "-m", "cosync", "atlas", "allow-ip", *arguments],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=60,
    )


def test_allow_ip_adds_address(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", OUTBOUND_IP)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"added {OUTBOUND_IP}/32 to {WHERE}\n"
    assert atlas.entries[PROJECT_ID] == [
        {"cidrBlock": f"{OUTBOUND_IP}/32", "comment": "Cosync JWT Function App outbound IP", "groupId": PROJECT_ID}
    ]


def test_allow_ip_sends_one_post(atlas: FakeAtlas) -> None:
    run_cli(atlas, "--ip", OUTBOUND_IP, "--comment", "func-abc outbound")

    posts = atlas.calls("POST")
    assert len(posts) == 1
    assert posts[0].path == ACCESS_LIST_PATH
    assert posts[0].body == [{"cidrBlock": f"{OUTBOUND_IP}/32", "comment": "func-abc outbound"}]
    assert posts[0].content_type == MEDIA_TYPE


def test_allow_ip_is_idempotent(atlas: FakeAtlas) -> None:
    first = run_cli(atlas, "--ip", OUTBOUND_IP)
    second = run_cli(atlas, "--ip", OUTBOUND_IP)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"unchanged: {OUTBOUND_IP}/32 is already on {WHERE}\n"
    assert len(atlas.calls("POST")) == 1
    assert atlas.cidr_blocks() == [f"{OUTBOUND_IP}/32"]


def test_allow_ip_matches_bare_address_entry(atlas: FakeAtlas) -> None:
    atlas.entries[PROJECT_ID].append({"cidrBlock": f"{OUTBOUND_IP}/32", "ipAddress": OUTBOUND_IP, "comment": ""})

    result = run_cli(atlas, "--ip", f"{OUTBOUND_IP}/32")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"unchanged: {OUTBOUND_IP}/32 is already on {WHERE}\n"
    assert atlas.calls("POST") == []


def test_allow_ip_reads_every_page(atlas: FakeAtlas) -> None:
    # Atlas serves at most 500 entries a page, so the address is on the second page.
    atlas.entries[PROJECT_ID].extend(
        {"cidrBlock": f"198.51.{index // 256}.{index % 256}/32", "comment": ""} for index in range(550)
    )
    atlas.entries[PROJECT_ID].append({"cidrBlock": f"{OUTBOUND_IP}/32", "comment": ""})

    result = run_cli(atlas, "--ip", OUTBOUND_IP)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"unchanged: {OUTBOUND_IP}/32 is already on {WHERE}\n"
    assert [request.path for request in atlas.calls("GET")] == [
        f"{ACCESS_LIST_PATH}?itemsPerPage=500&pageNum=1",
        f"{ACCESS_LIST_PATH}?itemsPerPage=500&pageNum=2",
    ]
    assert atlas.calls("POST") == []


def test_remove_anywhere_deletes_open_entry(atlas: FakeAtlas) -> None:
    atlas.entries[PROJECT_ID].append({"cidrBlock": "0.0.0.0/0", "comment": "Allow access from anywhere"})

    result = run_cli(atlas, "--ip", OUTBOUND_IP, "--remove-anywhere")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"added {OUTBOUND_IP}/32 to {WHERE}\nremoved 0.0.0.0/0 from {WHERE}\n"
    assert atlas.cidr_blocks() == [f"{OUTBOUND_IP}/32"]
    assert [request.path for request in atlas.calls("DELETE")] == [f"{ACCESS_LIST_PATH}/0.0.0.0%2F0"]


def test_remove_anywhere_adds_before_deleting(atlas: FakeAtlas) -> None:
    atlas.entries[PROJECT_ID].append({"cidrBlock": "0.0.0.0/0", "comment": ""})

    run_cli(atlas, "--ip", OUTBOUND_IP, "--remove-anywhere")

    changing = [request.method for request in atlas.requests if request.authorized and request.method != "GET"]
    assert changing == ["POST", "DELETE"]


def test_remove_anywhere_without_open_entry(atlas: FakeAtlas) -> None:
    atlas.entries[PROJECT_ID].append({"cidrBlock": f"{OUTBOUND_IP}/32", "comment": ""})

    result = run_cli(atlas, "--ip", OUTBOUND_IP, "--remove-anywhere")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"unchanged: {OUTBOUND_IP}/32 is already on {WHERE}\n"
        f"unchanged: 0.0.0.0/0 is not on {WHERE}\n"
    )
    assert atlas.calls("POST") == []
    assert atlas.calls("DELETE") == []


def test_allow_ip_reads_azd_output(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, extra_environment={"AZURE_OUTBOUND_IP": "198.51.100.20"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"added 198.51.100.20/32 to {WHERE}\n"
    assert atlas.cidr_blocks() == ["198.51.100.20/32"]


def test_allow_ip_answers_digest_challenge(atlas: FakeAtlas) -> None:
    run_cli(atlas, "--ip", OUTBOUND_IP)

    first = atlas.requests[0]
    assert first.authorized is False
    assert first.status == 401
    assert all(request.status in (200, 201) for request in atlas.requests[1:])
    assert len(atlas.calls("GET")) == 1


def test_allow_ip_sends_versioned_accept(atlas: FakeAtlas) -> None:
    run_cli(atlas, "--ip", OUTBOUND_IP)

    assert len(atlas.requests) == 3
    assert {request.accept for request in atlas.requests} == {MEDIA_TYPE}


def test_wrong_private_key_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", OUTBOUND_IP, private_key="not-the-private-key")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "error: Atlas rejected the API key (HTTP 401): check ATLAS_PUBLIC_KEY and ATLAS_PRIVATE_KEY: "
        "You are not authorized for this resource."
    )
    assert "not-the-private-key" not in result.stderr
    assert atlas.calls("POST") == []
    assert atlas.cidr_blocks() == []


def test_unknown_project_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", OUTBOUND_IP, "--project-id", "0123456789abcdef01234567")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: Atlas found no such project or entry (HTTP 404): check ATLAS_PROJECT_ID: "
        "No group with the given id exists."
    )


def test_invalid_ip_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", "203.0.113.300")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: invalid IP address '203.0.113.300': '203.0.113.300' does not appear to be an IPv4 or IPv6 address"
    )
    assert atlas.requests == []


def test_anywhere_as_ip_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", "0.0.0.0/0")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: invalid IP address '0.0.0.0/0': 0.0.0.0/0 would allow every address; "
        "give the deployment's outbound IP"
    )
    assert atlas.requests == []


def test_missing_ip_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: missing outbound IP: pass --ip or set AZURE_OUTBOUND_IP "
        "(for example --ip \"$(azd env get-value AZURE_OUTBOUND_IP)\")"
    )
    assert atlas.requests == []


def test_missing_private_key_exits_1(atlas: FakeAtlas) -> None:
    result = run_cli(atlas, "--ip", OUTBOUND_IP, private_key="")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: missing Atlas API key: set ATLAS_PUBLIC_KEY (or pass --public-key) and ATLAS_PRIVATE_KEY"
    )
    assert atlas.requests == []
