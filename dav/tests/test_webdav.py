"""WebDAV at /dav/: every method does what the REST API does, with its rules, and answers with
WebDAV's statuses."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from dav.tests.helpers import PROPFIND_ALL, D, dav, prop_request, responses, url
from files.models import Chunk, Entry, Version
from files.tree.roots import new_entry, root_of
from testing.fixtures import TEST_CHUNK_SIZE
from testing.uploads import WithToken, payload, send, sha256
from testing.users import make_user

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_options_says_it_is_webdav_with_locks(client):
    reply = dav(client, "OPTIONS", "/")

    assert reply.status == 200
    assert reply.headers["DAV"] == "1, 2"
    assert {"PROPFIND", "LOCK", "MOVE"} <= set(reply.headers["Allow"].split(", "))


def test_a_put_is_a_file_of_the_tree_and_a_second_put_a_new_version(client):
    data = payload(3 * C + 5)
    assert dav(client, "MKCOL", "/docs").status == 201

    created = dav(client, "PUT", "/docs/report.bin", data)
    replaced = dav(client, "PUT", "/docs/report.bin", data[::-1])

    assert (created.status, replaced.status) == (201, 204)
    assert created.headers["ETag"] == f'"{sha256(data)}"'
    got = dav(client, "GET", "/docs/report.bin")
    assert (got.status, got.body) == (200, data[::-1])
    listed = json.loads(send(client, "GET", f"/files?path={quote('/docs')}").body)
    (entry,) = listed["entries"]
    versions = json.loads(send(client, "GET", f"/files/{entry['file_id']}/versions").body)
    assert len(versions["versions"]) == 2


def test_a_range_is_read_from_the_chunks_it_needs(client):
    data = payload(4 * C)
    dav(client, "PUT", "/r.bin", data)

    part = dav(client, "GET", "/r.bin", Range=f"bytes={C - 3}-{2 * C + 2}")

    assert part.status == 206
    assert part.body == data[C - 3 : 2 * C + 3]
    assert part.headers["Content-Range"] == f"bytes {C - 3}-{2 * C + 2}/{4 * C}"


def test_head_gives_the_length_and_etag_without_the_body(client):
    data = payload(100)
    dav(client, "PUT", "/h.bin", data)

    head = dav(client, "HEAD", "/h.bin")

    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == "100"
    assert head.headers["ETag"] == f'"{sha256(data)}"'


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/nowhere/a.txt", 409),  # WebDAV makes no folder on the way
        ("MKCOL", "/nowhere/sub", 409),
        ("GET", "/missing.txt", 404),
        ("DELETE", "/missing.txt", 404),
        ("PROPFIND", "/missing.txt", 404),
    ],
)
def test_what_is_not_there_is_a_conflict_or_not_found(client, method, path, status):
    assert dav(client, method, path).status == status


def test_mkcol_makes_one_folder_and_refuses_a_taken_name_and_a_body(client):
    assert dav(client, "MKCOL", "/lab").status == 201
    assert dav(client, "MKCOL", "/lab").status == 405
    assert dav(client, "MKCOL", "/LAB").status == 405  # names compare as Finder's and Explorer's
    assert dav(client, "MKCOL", "/lab2", b"<x/>").status == 415
    assert dav(client, "PUT", "/lab", b"over a folder").status == 405


def test_delete_moves_a_folder_with_its_files_to_the_trash(client):
    dav(client, "MKCOL", "/old")
    dav(client, "PUT", "/old/a.txt", b"a")

    assert dav(client, "DELETE", "/old").status == 204

    assert dav(client, "GET", "/old/a.txt").status == 404
    (item,) = json.loads(send(client, "GET", "/trash").body)["entries"]
    assert send(client, "POST", f"/trash/{item['trash_id']}/restore").status == 200
    assert dav(client, "GET", "/old/a.txt").body == b"a"


def test_copy_shares_the_chunks_and_honours_overwrite(client):
    data = payload(2 * C + 1)
    dav(client, "PUT", "/src.bin", data)
    dav(client, "PUT", "/taken.bin", b"taken")
    chunks = Chunk.objects.count()

    made = dav(client, "COPY", "/src.bin", Destination=url("/copy.bin"))
    refused = dav(client, "COPY", "/src.bin", Destination=url("/taken.bin"), Overwrite="F")
    replaced = dav(client, "COPY", "/src.bin", Destination="http://testserver" + url("/taken.bin"))

    assert (made.status, refused.status, replaced.status) == (201, 412, 204)
    assert Chunk.objects.count() == chunks  # no chunk copied
    assert dav(client, "GET", "/copy.bin").body == data
    assert dav(client, "GET", "/taken.bin").body == data
    trashed = json.loads(send(client, "GET", "/trash").body)["entries"]
    assert [item["original_path"] for item in trashed] == ["/taken.bin"]  # what Overwrite replaced


def test_copy_of_a_folder_at_depth_0_makes_an_empty_folder(client):
    dav(client, "MKCOL", "/f")
    dav(client, "PUT", "/f/in.txt", b"in")

    assert dav(client, "COPY", "/f", Destination=url("/g"), Depth="0").status == 201
    assert dav(client, "COPY", "/f", Destination=url("/h")).status == 201

    assert dav(client, "GET", "/g/in.txt").status == 404
    assert dav(client, "GET", "/h/in.txt").body == b"in"


def test_move_keeps_the_files_id_and_leaves_nothing_behind(client):
    dav(client, "MKCOL", "/a")
    dav(client, "PUT", "/a/x.txt", b"x")
    file_id = Entry.objects.get(name="x.txt").id

    assert dav(client, "MOVE", "/a", Destination=url("/b/")).status == 201

    assert dav(client, "GET", "/a/x.txt").status == 404
    assert Entry.objects.get(name="x.txt", trash=None).id == file_id
    assert dav(client, "GET", "/b/x.txt").body == b"x"


@pytest.mark.parametrize(
    ("source", "destination", "headers", "status"),
    [
        ("/m", "/dav/m/inside", {}, 409),  # into itself
        ("/m", "/dav/m", {}, 403),  # onto itself
        ("/m", "/dav/gone/m", {}, 409),  # no folder there
        ("/m", "http://elsewhere.example/dav/m2", {}, 502),  # another server
        ("/m", "/api/m2", {}, 502),  # not under /dav/
        ("/m", "/dav/m2", {"Depth": "0"}, 400),  # a MOVE takes the whole
        ("/", "/dav/root2", {}, 403),
    ],
)
def test_a_move_that_cannot_be(client, source, destination, headers, status):
    dav(client, "MKCOL", "/m")

    assert dav(client, "MOVE", source, Destination=destination, **headers).status == status


def test_propfind_depth_1_lists_a_folder_with_the_properties_clients_read(client, settings):
    settings.DEFAULT_QUOTA_MB = None
    data = payload(1000)
    dav(client, "MKCOL", "/p")
    dav(client, "PUT", "/p/one.csv", data)
    dav(client, "MKCOL", "/p/sub")

    found = responses(dav(client, "PROPFIND", "/p", PROPFIND_ALL, Depth="1"))

    assert set(found) == {"/dav/p/", "/dav/p/one.csv", "/dav/p/sub/"}
    one = found["/dav/p/one.csv"]
    assert one[f"{D}getetag"][1].text == f'"{sha256(data)}"'
    assert one[f"{D}getcontentlength"][1].text == "1000"
    assert one[f"{D}getcontenttype"][1].text == "text/csv"
    assert one[f"{D}resourcetype"][1].find(f"{D}collection") is None
    assert found["/dav/p/sub/"][f"{D}resourcetype"][1].find(f"{D}collection") is not None
    assert f"{D}getlastmodified" in one and f"{D}creationdate" in one


def test_propfind_streams_a_big_folder_a_page_at_a_time(client, monkeypatch):
    monkeypatch.setattr("dav.property_views.PAGE", 3)
    dav(client, "MKCOL", "/many")
    for number in range(8):
        dav(client, "PUT", f"/many/{number}.txt", b"n")

    found = responses(dav(client, "PROPFIND", "/many", prop_request("getcontentlength"), Depth="1"))

    assert sorted(found) == ["/dav/many/"] + [f"/dav/many/{n}.txt" for n in range(8)]


def test_propfind_names_what_it_does_not_have_404(client):
    dav(client, "PUT", "/x.txt", b"x")
    asked = prop_request("getcontentlength", "nosuchprop")

    found = responses(dav(client, "PROPFIND", "/x.txt", asked, Depth="0"))["/dav/x.txt"]

    assert found[f"{D}getcontentlength"][0] == 200
    assert found[f"{D}nosuchprop"][0] == 404


def test_quota_properties_are_the_users_usage(client, settings):
    settings.API_OPEN = False
    _, token = make_user("ada", quota_bytes=1024 * 1024)
    as_ada = WithToken(client, token)
    dav(as_ada, "PUT", "/q.bin", payload(1000))
    asked = prop_request("quota-used-bytes", "quota-available-bytes")

    found = responses(dav(as_ada, "PROPFIND", "/", asked, Depth="0"))["/dav/"]

    used = int(found[f"{D}quota-used-bytes"][1].text or "")
    available = int(found[f"{D}quota-available-bytes"][1].text or "")
    assert used == 1000
    assert available == 1024 * 1024 - 1000
    # without a quota there is nothing to say of what is left
    settings.DEFAULT_QUOTA_MB = None
    _, unlimited = make_user("bo")
    found = responses(dav(WithToken(client, unlimited), "PROPFIND", "/", asked, Depth="0"))
    assert found["/dav/"][f"{D}quota-used-bytes"][0] == 200
    assert found["/dav/"][f"{D}quota-available-bytes"][0] == 404


def test_depth_infinity_is_refused_and_other_depths_are_bad_requests(client):
    assert dav(client, "PROPFIND", "/", Depth="infinity").status == 403
    assert dav(client, "PROPFIND", "/", Depth="2").status == 400


def test_proppatch_keeps_dead_properties_and_protects_live_ones(client):
    dav(client, "PUT", "/doc.txt", b"d")
    set_color = (
        b'<?xml version="1.0"?><propertyupdate xmlns="DAV:" xmlns:z="urn:z"><set><prop>'
        b"<z:color>red <b xmlns='urn:b'>bold</b></z:color></prop></set></propertyupdate>"
    )
    set_etag = set_color.replace(b"<z:color>", b"<getetag>x</getetag><z:color>")

    assert dav(client, "PROPPATCH", "/doc.txt", set_color).status == 207
    refused = responses(dav(client, "PROPPATCH", "/doc.txt", set_etag))["/dav/doc.txt"]
    asked = b'<propfind xmlns="DAV:"><prop><color xmlns="urn:z"/></prop></propfind>'
    found = responses(dav(client, "PROPFIND", "/doc.txt", asked, Depth="0"))["/dav/doc.txt"]

    assert refused[f"{D}getetag"][0] == 403
    assert refused["{urn:z}color"][0] == 424
    status, color = found["{urn:z}color"]
    assert (status, color.text, color.find("{urn:b}b").text) == (200, "red ", "bold")
    # a copy takes them along; a move keeps them (the same entry)
    dav(client, "COPY", "/doc.txt", Destination=url("/copy.txt"))
    copied = responses(dav(client, "PROPFIND", "/copy.txt", asked, Depth="0"))["/dav/copy.txt"]
    assert copied["{urn:z}color"][0] == 200


def test_an_entry_holds_a_bounded_number_of_dead_properties(client, monkeypatch):
    monkeypatch.setattr("dav.properties.MAX_DEAD_PROPERTIES", 2)
    dav(client, "PUT", "/props.txt", b"p")
    three = (
        b'<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:z">1</a><b xmlns="urn:z">2</b>'
        b'<c xmlns="urn:z">3</c></prop></set></propertyupdate>'
    )

    answer = responses(dav(client, "PROPPATCH", "/props.txt", three))["/dav/props.txt"]

    assert {status for status, _ in answer.values()} == {507}
    asked = b'<propfind xmlns="DAV:"><prop><a xmlns="urn:z"/></prop></propfind>'
    found = responses(dav(client, "PROPFIND", "/props.txt", asked, Depth="0"))
    assert found["/dav/props.txt"]["{urn:z}a"][0] == 404  # nothing of it was kept


@pytest.mark.parametrize(
    "body",
    [
        b"<propfind xmlns='DAV:'><prop>",  # not well-formed
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><propfind xmlns="DAV:"/>',
        b"<other xmlns='DAV:'/>",
    ],
)
def test_a_body_that_is_not_a_propfind_is_a_bad_request(client, body):
    reply = dav(client, "PROPFIND", "/", body, Depth="0")

    assert reply.status == 400
    assert json.loads(reply.body)["error"] == "bad_request"


def test_an_xml_body_over_a_megabyte_is_refused(client):
    body = b"<propfind xmlns='DAV:'>" + b" " * (1024 * 1024) + b"</propfind>"

    assert dav(client, "PROPFIND", "/", body, Depth="0").status == 413


def test_a_put_over_the_size_limit_or_the_quota_is_refused(client, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    assert dav(client, "PUT", "/big.bin", payload(1001)).status == 413
    settings.MAX_UPLOAD_BYTES = 10 * C
    settings.API_OPEN = False
    _, token = make_user("small", quota_bytes=500)
    reply = dav(WithToken(client, token), "PUT", "/q.bin", payload(501))
    assert reply.status == 507
    assert not Version.objects.exists()


def test_a_move_to_the_same_name_in_another_case_renames_it(client):
    dav(client, "PUT", "/readme.txt", b"r")

    assert dav(client, "MOVE", "/readme.txt", Destination=url("/README.txt")).status == 201

    found = responses(dav(client, "PROPFIND", "/", prop_request("displayname"), Depth="1"))
    assert "/dav/README.txt" in found and "/dav/readme.txt" not in found
    assert dav(client, "COPY", "/README.txt", Destination=url("/readme.TXT")).status == 403


def test_a_partial_put_is_refused_rather_than_stored_as_the_whole(client):
    dav(client, "PUT", "/whole.txt", b"0123456789")

    reply = dav(client, "PUT", "/whole.txt", b"AB", Content_Range="bytes 2-3/10")

    assert reply.status == 400
    assert dav(client, "GET", "/whole.txt").body == b"0123456789"


def test_head_of_a_folder_is_a_bodiless_200(client):
    dav(client, "MKCOL", "/hf")

    assert (dav(client, "HEAD", "/hf").status, dav(client, "HEAD", "/hf").body) == (200, b"")


def test_a_shallow_copy_onto_the_folder_that_holds_the_source_is_refused(client):
    dav(client, "MKCOL", "/a")
    dav(client, "MKCOL", "/a/b")
    dav(client, "PUT", "/a/b/keep.txt", b"k")

    reply = dav(client, "COPY", "/a/b", Destination=url("/a"), Depth="0")

    assert reply.status == 409
    assert dav(client, "GET", "/a/b/keep.txt").body == b"k"
    assert json.loads(send(client, "GET", "/trash").body)["entries"] == []


def test_a_folder_deeper_than_pythons_recursion_copies(client):
    # past the interpreter's recursion limit (1,000); made through the tree directly, since a
    # walk from the root is a query a level once a path is deeper than one query reaches
    folder = root_of(None)
    for _ in range(1100):
        folder = new_entry(folder, "d", Entry.Kind.FOLDER)
    new_entry(folder, "bottom", Entry.Kind.FOLDER)

    assert dav(client, "COPY", "/d", Destination=url("/e")).status == 201

    copies = Entry.objects.filter(name="bottom", kind=Entry.Kind.FOLDER, trash=None)
    assert copies.count() == 2


@pytest.mark.parametrize(
    ("method", "body", "headers"),
    [
        ("PROPFIND", b'<?xml version="1.0" encoding="x-unknown"?><propfind xmlns="DAV:"/>', {}),
        (
            "PROPFIND",
            '<?xml version="1.0" encoding="utf-16"?><propfind xmlns="DAV:"/>'.encode("utf-16"),
            {},
        ),
        (
            "PROPFIND",
            '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode(
                "utf-16"
            ),
            {},
        ),
        ("PROPPATCH", b"<x>" * 5000 + b"</x>" * 5000, {}),
        ("MOVE", b"", {"Destination": "http://[x/dav/a"}),
        ("PUT", b"x", {"If": "<http://[x/dav/a> (<opaquelocktoken:t>)"}),
    ],
)
def test_hostile_xml_and_urls_are_bad_requests(client, method, body, headers):
    dav(client, "PUT", "/target.txt", b"t")

    reply = dav(client, method, "/target.txt", body, **headers)

    assert reply.status == 400, reply
    assert json.loads(reply.body)["error"] == "bad_request"


def test_dead_properties_are_bounded_in_size_and_told_apart_by_case(client):
    dav(client, "PUT", "/p.txt", b"p")
    big = b"x" * (17 * 1024)
    too_big = b'<propertyupdate xmlns="DAV:"><set><prop><v xmlns="urn:z">' + big
    too_big += b"</v></prop></set></propertyupdate>"
    two = (
        b'<propertyupdate xmlns="DAV:"><set><prop><Color xmlns="urn:z">A</Color>'
        b'<color xmlns="urn:z">b</color></prop></set></propertyupdate>'
    )
    long_name = b'<propertyupdate xmlns="DAV:"><set><prop><x:p xmlns:x="urn:' + b"n" * 300
    long_name += b'">1</x:p></prop></set></propertyupdate>'

    assert {
        s for s, _ in responses(dav(client, "PROPPATCH", "/p.txt", too_big))["/dav/p.txt"].values()
    } == {507}
    assert dav(client, "PROPPATCH", "/p.txt", long_name).status == 400
    assert dav(client, "PROPPATCH", "/p.txt", two).status == 207
    asked = b'<propfind xmlns="DAV:"><prop><Color xmlns="urn:z"/><color xmlns="urn:z"/></prop>'
    asked += b"</propfind>"
    found = responses(dav(client, "PROPFIND", "/p.txt", asked, Depth="0"))["/dav/p.txt"]
    assert (found["{urn:z}Color"][1].text, found["{urn:z}color"][1].text) == ("A", "b")


def test_a_name_with_a_noncharacter_is_refused_so_listings_stay_xml(client):
    reply = send(client, "PUT", "/dav/a%EF%BF%BF", b"x")

    assert reply.status == 400
    assert json.loads(reply.body)["error"] == "invalid_name"
    assert send(client, "PUT", f"/write?name={quote(chr(0xFDD0))}", b"x").status == 400
