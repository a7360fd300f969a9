"""Every file has a place: paths, folders, names that collide as Windows and macOS see them,
moves that keep ids, copies that share content, and folders listed a page at a time."""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from urllib.parse import quote

import pytest

from files.models import Blob, Chunk, Entry, File, Folder
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import download, payload, send

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def put(client, path: str, data: bytes, **headers: str):
    return send(client, "PUT", f"/write?path={quote(path)}", data, headers)


def listing(client, path: str, **params: object) -> dict:
    query = "&".join(f"{key}={quote(str(value))}" for key, value in params.items())
    response = client.get(f"/files?path={quote(path)}&{query}")
    assert response.status_code == 200, response.content
    return response.json()


def post_json(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_a_write_to_a_path_makes_the_folders_above_it(client):
    reply = put(client, "/projects/2026/run1.csv", b"a,b\n")

    assert reply.status == 201
    body = json.loads(reply.body)
    assert (body["path"], body["file_name"]) == ("/projects/2026/run1.csv", "run1.csv")
    assert [e["name"] for e in listing(client, "/")["entries"]] == ["projects"]
    (entry,) = listing(client, "/projects/2026")["entries"]
    assert (entry["kind"], entry["path"], entry["file_id"]) == (
        "file",
        "/projects/2026/run1.csv",
        body["file_id"],
    )
    assert download(client, body["file_id"]) == b"a,b\n"


@pytest.mark.parametrize("depth", [2, 9, 12])  # found in one query up to 8 folders deep
def test_a_deep_path_is_written_then_overwritten_as_a_new_version(client, depth):
    path = "/" + "/".join(f"level{n}" for n in range(depth)) + "/data.bin"
    first = json.loads(put(client, path, b"first").body)
    second = put(client, path, b"second")

    assert (second.status, json.loads(second.body)["file_id"]) == (200, first["file_id"])
    assert download(client, first["file_id"]) == b"second"
    blocked = put(client, path + "/below", b"x")  # a file where a folder would have to be
    assert (blocked.status, json.loads(blocked.body)["error"]) == (409, "not_a_folder")


def test_name_alone_still_means_the_root(client):
    body = json.loads(send(client, "PUT", "/write?name=top.txt", b"x").body)

    assert body["path"] == "/top.txt"
    assert [e["path"] for e in listing(client, "/")["entries"]] == ["/top.txt"]


def test_names_collide_whatever_their_case_and_keep_their_own(client):
    first = put(client, "/Data.csv", b"one")
    second = put(client, "/data.csv", b"two")  # the same name: a new version of Data.csv

    assert (first.status, second.status) == (201, 200)
    assert json.loads(first.body)["file_id"] == json.loads(second.body)["file_id"]
    (entry,) = listing(client, "/")["entries"]
    assert entry["name"] == "Data.csv"  # the case it was given first
    assert post_json(client, "/folders", {"path": "/DATA.CSV"}).status_code == 409


def test_names_are_compared_in_nfc(client):
    composed, decomposed = "caf\u00e9.txt", unicodedata.normalize("NFD", "caf\u00e9.txt")
    assert composed != decomposed

    put(client, f"/{decomposed}", b"macOS sends NFD")

    (entry,) = listing(client, "/")["entries"]
    assert entry["name"] == composed  # kept in NFC
    assert put(client, f"/{composed}", b"again").status == 200  # the same name


@pytest.mark.parametrize(
    "path",
    ["/a/../b", "/a/./b", "/" + "x" * 256, "/a/" + "é" * 128, "/ok/" + "/".join(["d"] * 2100)],
    ids=["dot-dot", "dot", "name-over-255-bytes", "name-over-255-bytes-utf8", "path-over-4096"],
)
def test_paths_that_are_not_allowed_are_400(client, path):
    reply = put(client, path, b"x")

    assert (reply.status, json.loads(reply.body)["error"]) == (400, "invalid_name")
    assert not Entry.objects.filter(kind=Entry.Kind.FILE).exists()


def test_a_file_in_the_way_of_a_folder_is_409(client):
    put(client, "/report", b"a file")

    reply = put(client, "/report/inside.txt", b"x")

    assert (reply.status, json.loads(reply.body)["error"]) == (409, "not_a_folder")


def test_a_file_cannot_take_a_folders_name(client):
    post_json(client, "/folders", {"path": "/results"})

    reply = put(client, "/results", b"x")

    assert (reply.status, json.loads(reply.body)["error"]) == (409, "name_taken")


def test_folders_can_be_empty_made_shown_and_moved(client):
    made = post_json(client, "/folders", {"path": "/a/b/empty"})
    assert made.status_code == 201
    folder_id = made.json()["folder_id"]
    assert client.get(f"/folders/{folder_id}").json()["path"] == "/a/b/empty"
    assert listing(client, "/a/b/empty")["entries"] == []

    moved = post_json(client, f"/folders/{folder_id}/move", {"path": "/elsewhere/renamed"})

    assert (moved.status_code, moved.json()["path"]) == (200, "/elsewhere/renamed")
    assert moved.json()["folder_id"] == folder_id
    assert listing(client, "/a/b")["entries"] == []


def test_moving_a_folder_moves_everything_in_it_by_one_row(client):
    ids = [
        json.loads(put(client, f"/src/sub/f{n}.bin", payload(n + 1)).body)["file_id"]
        for n in range(3)
    ]
    src = Folder.objects.get(name="src")
    before = {entry.id: entry.parent_id for entry in Entry.objects.exclude(pk=src.pk)}

    post_json(client, f"/folders/{src.id}/move", {"path": "/dst/src2"})

    after = {entry.id: entry.parent_id for entry in Entry.objects.exclude(pk=src.pk)}
    changed = {entry for entry in before if before[entry] != after.get(entry)}
    assert changed == set()  # only the folder's own row (and the new /dst) changed
    assert [e["path"] for e in listing(client, "/dst/src2/sub")["entries"]] == [
        f"/dst/src2/sub/f{n}.bin" for n in range(3)
    ]
    assert [download(client, file_id) for file_id in ids] == [payload(n + 1) for n in range(3)]


@pytest.mark.parametrize("into", ["/a", "/a/b", "/a/b/c"])
def test_a_folder_cannot_move_into_itself_or_below_itself(client, into):
    post_json(client, "/folders", {"path": "/a/b/c"})
    folder = Folder.objects.get(name="a")

    response = post_json(client, f"/folders/{folder.id}/move", {"path": f"{into}/a"})

    assert (response.status_code, response.json()["error"]) == (409, "into_itself")


def test_the_root_cannot_be_moved_or_trashed(client):
    root_id = listing(client, "/")["folder_id"]

    assert client.delete(f"/folders/{root_id}").status_code == 403
    assert post_json(client, f"/folders/{root_id}/move", {"path": "/x"}).status_code == 403


def test_a_moved_file_keeps_its_id_versions_and_links(client):
    file_id = json.loads(put(client, "/a.txt", b"v1").body)["file_id"]
    put(client, "/a.txt", b"v2")
    url = post_json(client, f"/files/{file_id}/links", {}).json()["url"]

    moved = post_json(client, f"/files/{file_id}/move", {"path": "/deep/er/b.txt"})

    assert (moved.status_code, moved.json()["file_id"], moved.json()["path"]) == (
        200,
        file_id,
        "/deep/er/b.txt",
    )
    assert download(client, file_id) == b"v2"
    assert len(client.get(f"/files/{file_id}/versions").json()["versions"]) == 2
    assert client.get(url.removeprefix("http://testserver")).status_code == 200
    read = client.get(f"/read/{file_id}")
    assert "filename*=UTF-8''b.txt" in read["Content-Disposition"]  # the new name at once


def test_a_move_onto_a_taken_name_is_409(client):
    first = json.loads(put(client, "/one.txt", b"1").body)["file_id"]
    put(client, "/two.txt", b"2")

    response = post_json(client, f"/files/{first}/move", {"path": "/TWO.txt"})

    assert (response.status_code, response.json()["error"]) == (409, "name_taken")


@pytest.mark.both_stores
def test_a_copy_gets_a_new_id_and_shares_the_chunks(client, store):
    file_id = json.loads(put(client, "/big.bin", payload(5 * C)).body)["file_id"]
    keys = stored_keys(store)

    copied = post_json(client, f"/files/{file_id}/copy", {"path": "/copies/big.bin"})

    assert copied.status_code == 201
    copy_id = copied.json()["file_id"]
    assert copy_id != file_id
    assert stored_keys(store) == keys  # no chunk copied
    assert (Blob.objects.count(), Chunk.objects.count()) == (1, 5)
    assert download(client, copy_id) == payload(5 * C)
    assert client.get("/me").json()["stored_bytes"] == 5 * C  # counted once


def test_a_copied_file_is_its_own_file_after_the_copy(client):
    file_id = json.loads(put(client, "/a.txt", b"original").body)["file_id"]
    copy_id = post_json(client, f"/files/{file_id}/copy", {"path": "/b.txt"}).json()["file_id"]

    put(client, "/b.txt", b"changed")

    assert (download(client, file_id), download(client, copy_id)) == (b"original", b"changed")


def test_a_folder_lists_folders_first_then_files_by_name(client):
    for path in ("/Zeta.txt", "/alpha.txt", "/Beta.txt"):
        put(client, path, b"x")
    for path in ("/zz", "/AA", "/mm"):
        post_json(client, "/folders", {"path": path})

    entries = listing(client, "/")["entries"]

    assert [(e["kind"], e["name"]) for e in entries] == [
        ("folder", "AA"),
        ("folder", "mm"),
        ("folder", "zz"),
        ("file", "alpha.txt"),
        ("file", "Beta.txt"),
        ("file", "Zeta.txt"),
    ]


def test_a_folder_sorts_by_size_and_modification_both_ways(client):
    for name, size in (("m", 2), ("s", 1), ("l", 3)):
        put(client, f"/{name}", payload(size))

    by_size = [e["name"] for e in listing(client, "/", sort="size")["entries"]]
    by_size_desc = [e["name"] for e in listing(client, "/", sort="size", order="desc")["entries"]]
    by_modified = [e["name"] for e in listing(client, "/", sort="modified")["entries"]]

    assert by_size == ["s", "m", "l"] and by_size_desc == ["l", "m", "s"]
    assert by_modified == ["m", "s", "l"]


@pytest.mark.parametrize("sort", ["name", "modified", "size"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pages_follow_the_cursor_through_the_whole_folder_without_repeats(client, sort, order):
    for n in range(7):
        post_json(client, "/folders", {"path": f"/box/folder-{n}"})
    for n in range(23):
        put(client, f"/box/file-{n:02d}", payload(n % 5 + 1))
    everything = [
        e["path"] for e in listing(client, "/box", sort=sort, order=order, limit=1000)["entries"]
    ]

    seen, cursor = [], None
    while True:
        params = {"sort": sort, "order": order, "limit": 4}
        page = listing(client, "/box", **params, **({"cursor": cursor} if cursor else {}))
        seen += [e["path"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == everything and len(seen) == 30
    assert [p.split("/")[2].split("-")[0] for p in seen[:7]] == ["folder"] * 7


def crafted_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "colour"},
        {"order": "sideways"},
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"cursor": crafted_cursor(1e999, "a", str(uuid.uuid4()))},  # int(inf) overflows
        {"cursor": crafted_cursor(1, "a", "not-an-id")},
        {"cursor": crafted_cursor(1, "a", 123)},
        {"sort": "size", "cursor": crafted_cursor(1, 2**64, str(uuid.uuid4()))},
        {"sort": "size", "cursor": crafted_cursor(1, "big", str(uuid.uuid4()))},
        {"offset": 0},  # a folder pages by cursor
    ],
)
def test_bad_listing_parameters_are_400(client, params):
    query = "&".join(f"{key}={value}" for key, value in params.items())

    response = client.get(f"/files?path=/&{query}")

    assert (response.status_code, response.json()["error"]) == (400, "invalid_parameter")


@pytest.mark.parametrize("target", ["/", "//"])
def test_the_root_is_no_place_to_move_copy_or_restore_to(client, target):
    file_id = json.loads(put(client, "/a.txt", b"x").body)["file_id"]
    for url in (f"/files/{file_id}/move", f"/files/{file_id}/copy"):
        response = post_json(client, url, {"path": target})
        assert (response.status_code, response.json()["error"]) == (400, "invalid_name")
    client.delete(f"/files/{file_id}")
    (item,) = client.get("/trash").json()["entries"]
    response = post_json(client, f"/trash/{item['trash_id']}/restore", {"path": target})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_name")


def test_listing_a_missing_folder_or_a_file_is_an_error(client):
    put(client, "/a.txt", b"x")

    assert client.get("/files?path=/nope").status_code == 404
    assert client.get("/files?path=/a.txt").status_code == 409


def test_the_flat_list_without_a_path_is_as_before_with_paths(client):
    put(client, "/x/one.txt", b"1")
    put(client, "/two.txt", b"2")

    files = client.get("/files").json()["files"]

    assert [f["path"] for f in files] == ["/two.txt", "/x/one.txt"]  # newest first
    assert client.get("/files?sort=size").status_code == 400  # sorting is a folder's
    assert {"file_id", "file_name", "file_size", "sha256", "created_at"} <= set(files[0])


def test_each_user_has_a_tree_of_their_own(client, settings):
    from testing.uploads import WithToken
    from testing.users import make_user

    settings.API_OPEN = False
    _, alice = make_user("alice")
    _, bob = make_user("bob")
    put(WithToken(client, alice), "/same/name.txt", b"alice's")
    put(WithToken(client, bob), "/same/name.txt", b"bob's")

    as_alice = json.loads(send(WithToken(client, alice), "GET", "/files?path=/same").body)
    as_bob = json.loads(send(WithToken(client, bob), "GET", "/files?path=/same").body)

    assert as_alice["entries"][0]["file_id"] != as_bob["entries"][0]["file_id"]
    assert download(WithToken(client, bob), as_bob["entries"][0]["file_id"]) == b"bob's"
    assert File.objects.count() == 2
