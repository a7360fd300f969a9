"""GET /metrics: who may scrape it, what it says about requests, chunks, the cache and S3, and
that promtool finds nothing wrong with it."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from metrics.checks import check_metrics_networks
from testing.fixtures import TEST_CHUNK_SIZE as C
from testing.uploads import download, payload, upload
from testing.wsgi_client import call_wsgi

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[str, float]:
    """Every sample of /metrics, keyed by `name{label="value",…}`."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return samples_of(response.content.decode())


def samples_of(text: str) -> dict[str, float]:
    return {
        key(sample.name, **sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def grew(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_chunk_bytes_and_cache_lookups_are_counted(client, store):
    data = payload(3 * C + 5)
    before = scrape(client)

    file_id = upload(client, data)["file_id"]
    download(client, file_id)
    download(client, file_id)
    after = scrape(client)

    assert grew(before, after, "labdropbox_chunk_bytes_written_total{}") == len(data)
    assert grew(before, after, "labdropbox_chunk_bytes_read_total{}") == 2 * len(data)
    assert grew(before, after, 'labdropbox_metadata_cache_lookups_total{result="miss"}') == 1
    assert grew(before, after, 'labdropbox_metadata_cache_lookups_total{result="hit"}') == 1


def test_a_corrupt_chunk_is_counted(client, store):
    file_id = upload(client, payload(2 * C))["file_id"]
    store.put(f"chunks/{file_id}/0", payload(C, seed=9))  # same size, other bytes
    before = scrape(client)

    refused = client.get(f"/read/{file_id}")  # found before the response starts

    after = scrape(client)
    assert refused.status_code == 502
    assert grew(before, after, "labdropbox_chunk_verification_failures_total{}") == 1


def key(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def http(name: str, method: str, route: str, status: int) -> str:
    labels = {"http_request_method": method, "http_route": route}
    return key(name, http_response_status_code=str(status), **labels)


def test_requests_are_measured_by_route_method_and_status_never_by_path(client):
    file_id = upload(client, payload(C))["file_id"]
    before = scrape(client)

    call_wsgi("GET", f"/read/{file_id}")
    call_wsgi("GET", f"/read/{uuid.uuid4()}")
    call_wsgi("GET", "/no/such/place")
    call_wsgi("BREW", "/health")

    after = scrape(client)
    count = "http_server_request_duration_seconds_count"
    assert grew(before, after, http(count, "GET", "/read/{file_id}", 200)) == 1
    assert grew(before, after, http(count, "GET", "/read/{file_id}", 404)) == 1
    assert grew(before, after, http(count, "GET", "unmatched", 404)) == 1
    assert grew(before, after, http(count, "_OTHER", "/health", 405)) == 1
    sent = http("http_server_response_body_size_bytes_sum", "GET", "/read/{file_id}", 200)
    assert grew(before, after, sent) == C
    assert not any(file_id in name for name in after)


def test_resumable_uploads_in_progress_are_counted_from_the_database(client):
    before = scrape(client)["labdropbox_resumable_uploads_unfinished{}"]

    client.post("/uploads/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_LENGTH="10")

    assert scrape(client)["labdropbox_resumable_uploads_unfinished{}"] == before + 1


def test_the_trash_replaced_versions_and_writes_in_flight_are_counted(client):
    before = scrape(client)
    file_id = client.put("/write?path=/m/a.txt", b"1", content_type="text/plain").json()["file_id"]
    client.put("/write?path=/m/a.txt", b"2", content_type="text/plain")
    client.delete(f"/files/{file_id}")

    after = scrape(client)
    assert after["labdropbox_trash_entries{}"] == before["labdropbox_trash_entries{}"] + 1
    assert after["labdropbox_versions_replaced{}"] == before["labdropbox_versions_replaced{}"] + 1
    assert after["labdropbox_writes_in_flight{}"] == 0


def test_openmetrics_when_asked(client):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")

    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


@pytest.mark.parametrize(
    ("address", "authorization", "status"),
    [
        ("127.0.0.1", None, 200),  # METRICS_ALLOWED_NETWORKS: loopback by default
        ("203.0.113.9", None, 403),
        ("203.0.113.9", "Bearer wrong", 403),
        ("203.0.113.9", "Bearer scrape-secret", 200),
    ],
)
def test_a_closed_api_shows_metrics_only_to_its_scrapers(
    client, settings, address, authorization, status
):
    settings.API_OPEN, settings.METRICS_TOKEN = False, "scrape-secret"
    headers = {"REMOTE_ADDR": address}
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization

    response = client.get("/metrics", **headers)

    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "forbidden"


def test_a_malformed_allowed_network_is_metrics_e001(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network"]

    assert [error.id for error in check_metrics_networks(None)] == ["metrics.E001"]


def test_promtool_finds_nothing_wrong(client, tmp_path):
    assert shutil.which("promtool"), "promtool is not installed (Debian's prometheus package)"
    upload(client, payload(C))
    text = client.get("/metrics").content

    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b""


def test_check_command_accepts_the_settings():
    call_command("check")
