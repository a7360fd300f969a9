"""Share links: POST/GET /files/{id}/links, DELETE /files/{id}/links/{link_id}, GET/HEAD /s/{token}.

In-process first (what a link allows and for how long), then real clients against gunicorn, and
revocation seen by two service instances at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from files.models import ShareLink
from files.operations.links import start_download
from labdropbox.api.errors import LinkNotFound
from testing.mysql import recreate_mysql_database
from testing.servers import GunicornServer
from testing.uploads import WithToken, payload, send, sha256, upload
from testing.users import make_user
from testing.wsgi_client import Trace, call_wsgi

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


@pytest.fixture
def alice(client, settings):
    settings.API_OPEN = False
    _, token = make_user("alice")
    return WithToken(client, token)


@pytest.fixture
def shared(alice):
    """Alice's file of 5 chunks and a fresh link to it: (data, file id, link path)."""
    data = payload(5 * 16 * 1024 + 7)
    file_id = upload(alice, data)["file_id"]
    link = make_link(alice, file_id)
    return data, file_id, link_path(link)


def make_link(target, file_id: str, **options) -> dict:
    reply = send(target, "POST", f"/files/{file_id}/links", json.dumps(options).encode())
    assert reply.status == 201, reply.body
    return json.loads(reply.body)


def link_path(link: dict) -> str:
    return "/s/" + link["url"].rsplit("/", 1)[1]


def test_a_link_downloads_the_file_without_a_token(client, alice):
    data = payload(3 * 16 * 1024)
    file_id = upload(alice, data)["file_id"]

    created = send(alice, "POST", f"/files/{file_id}/links")
    link = json.loads(created.body)
    got = send(client, "GET", link_path(link))

    assert created.status == 201
    assert created.headers["Location"] == link["url"]
    assert (link["file_id"], link["expires_at"], link["max_downloads"]) == (file_id, None, None)
    assert got.status == 200
    assert got.body == data
    assert got.headers["ETag"] == f'"{sha256(data)}"'


def test_a_link_answers_ranges_conditions_and_head_like_read(client, shared):
    data, _, path = shared
    etag = send(client, "HEAD", path).headers["ETag"]

    ranged = send(client, "GET", path, headers={"Range": "bytes=100-20000"})
    unchanged = send(client, "GET", path, headers={"If-None-Match": etag})
    head = send(client, "HEAD", path)

    assert (ranged.status, ranged.body) == (206, data[100:20001])
    assert ranged.headers["Content-Range"] == f"bytes 100-20000/{len(data)}"
    assert unchanged.status == 304
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(len(data)))


def test_the_token_is_stored_only_as_a_hash(shared):
    token = shared[2].rsplit("/", 1)[1]
    link = ShareLink.objects.get()

    assert len(token) >= 32  # 24 random bytes, URL-safe base64: 192 bits
    assert token not in (link.digest, link.prefix, str(link.id))
    assert sha256(token.encode()) == link.digest


def test_the_list_shows_links_but_never_their_urls(alice, shared):
    _, file_id, path = shared

    listed = json.loads(send(alice, "GET", f"/files/{file_id}/links").body)["links"]

    assert len(listed) == 1
    assert "url" not in listed[0]
    assert path.rsplit("/", 1)[1].startswith(listed[0]["prefix"])


def test_a_revoked_link_is_404_and_revoking_again_changes_nothing(client, alice, shared):
    _, file_id, path = shared
    link_id = json.loads(send(alice, "GET", f"/files/{file_id}/links").body)["links"][0]["link_id"]

    first = send(alice, "DELETE", f"/files/{file_id}/links/{link_id}")
    again = send(alice, "DELETE", f"/files/{file_id}/links/{link_id}")

    assert (first.status, again.status) == (204, 204)
    assert send(client, "GET", path).status == 404
    assert send(client, "HEAD", path).status == 404
    listed = json.loads(send(alice, "GET", f"/files/{file_id}/links").body)["links"]
    assert listed[0]["revoked"] is True


@pytest.mark.parametrize("link_id", ["00000000-0000-0000-0000-000000000000", "not-an-id"])
def test_revoking_an_unknown_link_is_404(alice, shared, link_id):
    reply = send(alice, "DELETE", f"/files/{shared[1]}/links/{link_id}")

    assert reply.status == 404


def test_an_expired_link_is_404(client, alice, shared):
    _, _, path = shared
    assert send(client, "GET", path).status == 200

    ShareLink.objects.update(expires_at=timezone.now() - timedelta(milliseconds=1))

    assert send(client, "GET", path).status == 404


def test_a_link_may_last_longer_than_a_week(alice, shared):
    link = make_link(alice, shared[1], expires_in_seconds=400 * 24 * 3600)

    expires_at = ShareLink.objects.get(pk=link["link_id"]).expires_at
    assert expires_at - timezone.now() > timedelta(days=399)


def test_a_trashed_files_links_are_404_until_it_is_restored_and_go_with_its_purge(
    client, alice, shared
):
    data, file_id, path = shared

    assert send(alice, "DELETE", f"/files/{file_id}").status == 204
    assert send(client, "GET", path).status == 404
    (trashed,) = json.loads(send(alice, "GET", "/trash").body)["entries"]
    assert send(alice, "POST", f"/trash/{trashed['trash_id']}/restore").status == 200
    assert send(client, "GET", path).body == data
    send(alice, "DELETE", f"/files/{file_id}")
    (trashed,) = json.loads(send(alice, "GET", "/trash").body)["entries"]
    assert send(alice, "DELETE", f"/trash/{trashed['trash_id']}").status == 204

    assert send(client, "GET", path).status == 404
    assert not ShareLink.objects.exists()


def test_a_download_counts_when_it_starts_at_the_first_byte(client, alice, shared):
    data, file_id, _ = shared
    path = link_path(make_link(alice, file_id, max_downloads=2))
    half = len(data) // 2

    whole = send(client, "GET", path)  # one
    head = send(client, "HEAD", path)  # no body: not a download
    first_half = send(client, "GET", path, headers={"Range": f"bytes=0-{half - 1}"})  # two
    rest = send(client, "GET", path, headers={"Range": f"bytes={half}-"})  # goes on with two
    third = send(client, "GET", path)

    assert [whole.status, head.status, first_half.status, rest.status] == [200, 200, 206, 206]
    assert first_half.body + rest.body == data
    assert third.status == 404
    listed = json.loads(send(alice, "GET", f"/files/{file_id}/links").body)["links"]
    assert [link["downloads"] for link in listed if link["max_downloads"] == 2] == [2]


def test_ranges_that_never_start_a_download_are_bounded_in_bytes(client, alice, shared):
    data, file_id, _ = shared
    path = link_path(make_link(alice, file_id, max_downloads=1))
    past_the_start = {"Range": f"bytes=1-{len(data) - 1}"}  # resumes, as far as the link knows

    statuses = [send(client, "GET", path, headers=past_the_start).status for _ in range(4)]

    # Twice the file's bytes at most: the third range passes that, and the fourth is refused.
    assert statuses == [206, 206, 206, 404]


def test_an_empty_files_link_counts_downloads_too(client, alice):
    file_id = upload(alice, b"")["file_id"]
    path = link_path(make_link(alice, file_id, max_downloads=1))

    assert send(client, "GET", path).status == 200
    assert send(client, "GET", path).status == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"expires_in_seconds": 0}', 400),
        (b'{"expires_in_seconds": 1.5}', 400),
        (b'{"max_downloads": true}', 400),
        (b'{"max_downloads": -1}', 400),
        (b'{"expires_in_seconds": 99999999999}', 400),
        (b'{"expire_in_seconds": 60}', 400),  # a typo is not silently "no expiry"
        (b'{"note": "' + b"x" * 5000 + b'"}', 413),
        (b'{"expires_in_seconds": null, "max_downloads": null}', 201),
    ],
)
def test_link_options_are_checked(alice, shared, body, status):
    reply = send(alice, "POST", f"/files/{shared[1]}/links", body)

    assert reply.status == status, reply.body
    if status != 201:
        assert json.loads(reply.body)["error"] in ("invalid_parameter", "too_large")


def test_ranges_in_flight_together_are_charged_up_front(alice, shared):
    data, file_id, _ = shared
    make_link(alice, file_id, max_downloads=1)
    link = ShareLink.objects.select_related("file").get(max_downloads=1)

    # Bodies that have started and not yet been closed: three files' worth fit, a fourth not.
    for _ in range(3):
        start_download(link, 1, len(data))
    with pytest.raises(LinkNotFound):
        start_download(link, 1, len(data))


def test_a_deactivated_owners_links_stop(client, alice, shared):
    _, _, path = shared
    get_user_model().objects.filter(username="alice").update(is_active=False)

    assert send(client, "GET", path).status == 404


def test_a_link_token_stays_out_of_the_spans(shared, spans):
    _, _, path = shared
    token = path.rsplit("/", 1)[1]
    spans.clear()

    response = call_wsgi("GET", path)

    assert response.status == 200
    recorded = spans.get_finished_spans()
    assert recorded
    for span in recorded:
        assert token not in span.name
        assert not any(token in str(value) for value in span.attributes.values()), span.name


def test_deeply_nested_json_is_400_not_500(alice, shared):
    reply = send(alice, "POST", f"/files/{shared[1]}/links", b"[" * 3000)

    assert reply.status == 400


@pytest.mark.parametrize("token", ["x", "A" * 32, "A" * 5000])
def test_an_unknown_link_token_is_404(client, token):
    reply = send(client, "GET", f"/s/{token}")

    assert reply.status == 404
    assert json.loads(reply.body)["error"] == "not_found"


def test_a_link_read_has_its_own_root_span_over_reads_tree(client, shared, spans):
    _, _, path = shared
    link_id = str(ShareLink.objects.get().id)
    spans.clear()

    send(client, "GET", path)

    trace = Trace(spans.get_finished_spans())
    root = trace.one("read_shared_file")
    assert root.attributes["share_link.id"] == link_id
    assert {"cache_lookup", "fetch_chunk_metadata", "fetch_chunks_parallel"} <= (
        trace.child_names(root)
    )
    assert trace.named("download_chunk_")


# --- real clients and two service instances ----------------------------------------------------


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory):
    """Two gunicorn-run instances of one service: one database, one store, one cache config."""
    folder = tmp_path_factory.mktemp("links")
    env = {"CHUNK_SIZE_BYTES": str(64 * 1024), "API_OPEN": "false", "MINIO_ENDPOINT": ""}
    if django_settings.TIDB_HOST:
        env["TIDB_DATABASE"] = recreate_mysql_database(os.environ, "links")
    first = GunicornServer(folder, **env)
    second = GunicornServer(folder, **env)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def link_to_big_file(two_instances):
    """A 9 MiB file of a user's, enough for aria2c's eight 1 MiB segments, and a link to it."""
    first, _ = two_instances
    token = first.manage("create_token", "linker", "--create-user").stdout.strip()
    owner = WithToken(first, token)
    data = payload(9 * MIB + 12345, seed=5)
    file_id = upload(owner, data)["file_id"]
    return data, owner, file_id


def run(*command: str) -> None:
    assert shutil.which(command[0]), f"{command[0]} is not installed (see the README's Tests)"
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def fresh_link_url(two_instances, link_to_big_file, **options) -> str:
    first, _ = two_instances
    _, owner, file_id = link_to_big_file
    return f"{first.url}{link_path(make_link(owner, file_id, **options))}"


def test_curl_reads_a_range_and_resumes_through_a_link(two_instances, link_to_big_file, tmp_path):
    data = link_to_big_file[0]
    url = fresh_link_url(two_instances, link_to_big_file)
    part, resumed = tmp_path / "part", tmp_path / "resumed"
    resumed.write_bytes(data[: 3 * MIB + 5])  # an interrupted download

    run("curl", "-sSf", "-r", "1000-2999999", "-o", str(part), url)
    run("curl", "-sSf", "-C", "-", "-o", str(resumed), url)

    assert part.read_bytes() == data[1000:3000000]
    assert resumed.read_bytes() == data


def test_wget_continues_through_a_link(two_instances, link_to_big_file, tmp_path):
    data = link_to_big_file[0]
    url = fresh_link_url(two_instances, link_to_big_file, max_downloads=1)
    out = tmp_path / "wget.bin"
    out.write_bytes(data[: 5 * MIB])

    run("wget", "-q", "-c", "-O", str(out), url)

    assert out.read_bytes() == data


def test_aria2c_splits_a_one_download_link_into_eight(two_instances, link_to_big_file, tmp_path):
    data = link_to_big_file[0]
    url = fresh_link_url(two_instances, link_to_big_file, max_downloads=1)

    run(
        "aria2c", "-q", "-x", "8", "-s", "8", "--min-split-size=1M", "--allow-overwrite=true",
        "-d", str(tmp_path), "-o", "aria.bin", url,
    )  # fmt: skip

    assert (tmp_path / "aria.bin").read_bytes() == data
    # Its first request (for the whole file, cut short once the other connections took over)
    # was the one download; the seven segments went on with it. A new download is refused.
    owner, file_id = link_to_big_file[1:]
    assert link_downloads(owner, file_id, url) == 1
    assert two_instances[1].request("GET", url.removeprefix(two_instances[0].url))[0] == 404


def link_downloads(owner, file_id: str, url: str) -> int:
    links = json.loads(send(owner, "GET", f"/files/{file_id}/links").body)["links"]
    return next(
        link["downloads"] for link in links if url.rsplit("/", 1)[1].startswith(link["prefix"])
    )


def test_revocation_holds_on_every_instance_at_once(two_instances, link_to_big_file):
    first, second = two_instances
    _, owner, file_id = link_to_big_file
    link = make_link(owner, file_id)
    path = link_path(link)
    # Both instances (and as many of their workers as these requests reach) have served it.
    for _ in range(8):
        assert first.request("HEAD", path)[0] == 200
        assert second.request("HEAD", path)[0] == 200

    revoked = send(owner, "DELETE", f"/files/{file_id}/links/{link['link_id']}")

    assert revoked.status == 204
    assert path.rsplit("/", 1)[1] not in first.log_text() + second.log_text()  # /s/{token}
    # The very next requests, each on a new connection, to either instance: no grace period.
    answers = [server.request("GET", path)[0] for _ in range(8) for server in (first, second)]
    assert answers == [404] * 16
