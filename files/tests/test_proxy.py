"""The reverse proxy that the compose stack and Kubernetes put in front of the service: its
configuration passes `nginx -t`, and the real nginx streams uploads through unbuffered and
refuses what is over the limits in the service's JSON error format."""

from __future__ import annotations

import http.client
import json
import socket

import pytest
import yaml

from testing.conditions import eventually
from testing.fixtures import SERVICE_CHUNK_SIZE
from testing.nginx import PROXY_TEMPLATE, NginxServer, check_config, proxy_server_block
from testing.servers import PROJECT_DIR
from testing.uploads import download, payload, upload

C = SERVICE_CHUNK_SIZE


def test_the_proxy_configuration_passes_nginx_t(tmp_path):
    checked = check_config(tmp_path, proxy_server_block("127.0.0.1:9", max_upload_mb=10240))

    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_compose_and_kubernetes_use_the_one_proxy_configuration():
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    kustomization = yaml.safe_load((PROXY_TEMPLATE.parent / "kustomization.yaml").read_text())

    mount = compose["services"]["proxy"]["volumes"][0]
    assert (PROJECT_DIR / mount.split(":")[0]).resolve() == PROXY_TEMPLATE
    (generated,) = kustomization["configMapGenerator"]
    assert generated["files"] == [f"default.conf.template={PROXY_TEMPLATE.name}"]


@pytest.fixture(scope="module")
def proxy(service, tmp_path_factory):
    server = NginxServer(
        tmp_path_factory.mktemp("proxy"),
        proxy_server_block(f"127.0.0.1:{service.port}", max_upload_mb=1),
        health_path="/health",
    )
    yield server
    server.stop()


def test_uploads_and_reads_go_through_the_proxy(proxy):
    data = payload(5 * C + 7, seed=31)

    file_id = upload(proxy, data, "proxied.bin")["file_id"]

    assert download(proxy, file_id) == data
    status, headers, body = proxy.request("GET", f"/read/{file_id}", headers={"Range": "bytes=5-9"})
    assert (status, body) == (206, data[5:10])


def test_an_upload_streams_through_the_proxy_as_it_arrives(proxy, service):
    """The service stores the first chunks while the client is still sending the rest: nginx
    does not buffer the body first."""
    data = payload(8 * C, seed=32)
    before = {item.key for item in service.store.list()}
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        head = "PUT /write?name=streamed.bin HTTP/1.1\r\nHost: localhost\r\n"
        sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data[: 4 * C])
        # Stored while the client has still half the body to send.
        eventually(lambda: {item.key for item in service.store.list()} - before)
        sock.sendall(data[4 * C :])
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        body = json.loads(answer.read())

    assert answer.status == 201
    assert download(service, body["file_id"]) == data


def test_the_proxy_refuses_a_body_over_the_limit_as_json(proxy):
    status, headers, body = proxy.request(
        "PUT", "/write?name=big.bin", body=payload(1024 * 1024 + 1)
    )

    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == "too_large"
