"""Secrets appear in no log line: share-link tokens, API tokens and Authorization values, in
Django's request log, gunicorn's error and access logs and our own, whether the request
succeeded or failed. The service's whole output is read after link and token requests that go
every way; then every secret is looked for in it."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from testing.mysql import own_database
from testing.servers import GunicornServer
from testing.uploads import upload


@pytest.fixture
def closed_service(tmp_path: Path):
    server = GunicornServer(
        tmp_path / "logs", API_OPEN="false", MINIO_ENDPOINT="", **own_database("logs")
    )
    yield server
    server.stop()


def raw_request(server: GunicornServer, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_no_secret_reaches_any_log_line(closed_service):
    service = closed_service
    token = service.manage("create_token", "alice", "--create-user").stdout.strip()
    bearer = {"Authorization": f"Bearer {token}"}
    file_id = upload(service, b"z" * 5000, headers=bearer)["file_id"]
    status, _, body = service.request(
        "POST", f"/files/{file_id}/links", body=b'{"max_downloads": 1}', headers=bearer
    )
    assert status == 201
    link = json.loads(body)
    link_token = link["url"].rsplit("/", 1)[1]
    wrong_token = "ldb_" + "W" * 43
    basic = base64.b64encode(f"alice:{token}".encode()).decode()
    path = f"/s/{link_token}"

    answers = [
        service.request("GET", path)[0],  # 200, and the one download it allows
        service.request("HEAD", path)[0],
        service.request("GET", path, headers={"Range": "bytes=999999-"})[0],  # 416
        service.request("GET", path, headers={"If-Match": '"nope"'})[0],  # 412
        service.request("POST", path)[0],  # 405
        service.request("GET", path)[0],  # 404: used up
        service.request("GET", f"{path}x")[0],  # 404: no such link
        service.request("GET", "/me", headers=bearer)[0],  # 200
        service.request("GET", "/me", headers={"Authorization": f"Bearer {wrong_token}"})[0],
        service.request("GET", "/me", headers={"Authorization": f"Bearer {token} extra"})[0],
        service.request("GET", "/me", headers={"Authorization": f"Basic {basic}"})[0],
        service.request("GET", f"/read/{file_id}", headers=bearer)[0],
    ]
    # gunicorn refuses this head itself, and says why in its error log.
    head = f"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\x01\r\n\r\n"
    malformed = raw_request(service, head.encode())
    service.request("DELETE", f"/files/{file_id}/links/{link['link_id']}", headers=bearer)
    service.request("GET", path)  # revoked: 404

    assert answers == [200, 200, 416, 412, 405, 404, 404, 200, 401, 401, 401, 200]
    assert malformed.startswith(b"HTTP/1.1 400")
    log = service.log_text()
    # The lines were written: Django's for 4xx answers, gunicorn's for the head it refused.
    assert "Not Found: /s/{token}" in log and "Range Not Satisfiable: /s/{token}" in log
    assert "Invalid request from ip=127.0.0.1" in log
    for secret in (link_token, token, token[4:], wrong_token, basic):
        assert secret not in log
