"""The admin, logged in through the real login and fetched page by page."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from files.models import File, TrashEntry, Upload
from files.storage import chunk_key
from files.tree.roots import path_of
from testing.fixtures import TEST_CHUNK_SIZE, stored_keys
from testing.uploads import (
    WithToken,
    download,
    payload,
    send,
    sha256,
    tus_create,
    tus_head,
    tus_patch,
    upload,
)
from testing.users import make_user
from traces.recorder import record_spans

pytestmark = pytest.mark.django_db

C = TEST_CHUNK_SIZE


def test_anonymous_user_is_sent_to_the_login_page(client):
    for url in ("/admin/files/file/", "/admin/traces/recordedtrace/", "/admin/files/file/upload/"):
        response = client.get(url)

        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_list_shows_name_human_size_chunk_count_and_short_hash(admin_client, client):
    body = upload(client, payload(3 * C), name="listed.bin")

    page = admin_client.get("/admin/files/file/").content.decode()

    assert "listed.bin" in page
    assert "48.0\xa0KB" in page  # 3 x 16 KiB, human-readable
    assert body["sha256"][:12] in page
    assert body["sha256"] not in page  # shortened


def test_search_by_name_and_by_id(admin_client, client):
    first = upload(client, b"1", name="alpha-report.txt")
    second = upload(client, b"2", name="beta-notes.txt")

    by_name = admin_client.get("/admin/files/file/", {"q": "alpha"}).content.decode()
    by_id = admin_client.get("/admin/files/file/", {"q": second["file_id"]}).content.decode()

    assert "alpha-report.txt" in by_name and "beta-notes.txt" not in by_name
    assert "beta-notes.txt" in by_id and "alpha-report.txt" not in by_id
    assert first["file_id"]


def test_detail_shows_chunks_with_keys_and_a_download_link(admin_client, client):
    file_id = upload(client, payload(2 * C + 1), name="seen.bin")["file_id"]

    page = admin_client.get(f"/admin/files/file/{file_id}/change/").content.decode()

    for index in range(3):
        assert f"<code>{chunk_key(file_id, index)}</code>" in page
    assert f'<a href="/read/{file_id}">seen.bin</a>' in page
    assert 'name="name"' not in page  # read-only: no form fields to edit


def test_detail_links_to_the_files_recent_traces(admin_client, client, spans):
    file_id = upload(client, payload(C), name="traced.bin")["file_id"]
    record_spans(spans.get_finished_spans(), keep=10)

    page = admin_client.get(f"/admin/files/file/{file_id}/change/").content.decode()

    assert "/admin/traces/recordedtrace/" in page
    assert "write_file" in page


def test_upload_form_stores_the_file_through_the_pipeline(
    admin_client, admin_user, settings, store
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = C  # Django spools it to a temporary file
    data = payload(5 * C + 9)

    response = admin_client.post(
        reverse("admin:files_file_upload"),
        {"file": SimpleUploadedFile("form.bin", data), "folder": "/from the admin", "name": ""},
    )

    file = File.objects.get(name="form.bin")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:files_file_change", args=[file.id])
    assert (file.size, file.chunk_count, file.sha256) == (len(data), 6, sha256(data))
    assert file.owner == admin_user  # the uploader's, like a file sent with their token
    assert path_of(file) == "/from the admin/form.bin"
    assert download(admin_client, str(file.id)) == data
    assert len(stored_keys(store)) == 6


def test_upload_form_reports_a_storage_outage_and_keeps_nothing(admin_client, settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1

    response = admin_client.post(
        reverse("admin:files_file_upload"),
        {"file": SimpleUploadedFile("x.bin", b"abc"), "folder": "/"},
    )

    assert response.status_code == 200
    assert "nothing was stored" in response.content.decode()
    assert not File.objects.exists()


def test_verify_action_reports_each_file(admin_client, client, store):
    good = upload(client, payload(2 * C), name="good.bin")["file_id"]
    bad = upload(client, payload(2 * C, seed=1), name="bad.bin")["file_id"]
    store.put(chunk_key(bad, 1), b"tampered")

    response = admin_client.post(
        "/admin/files/file/",
        {"action": "verify_integrity", "_selected_action": [good, bad]},
        follow=True,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert "good.bin: every chunk of its 1 versions intact" in messages
    assert any(m.startswith("bad.bin: chunk 1 is corrupt") for m in messages)


def test_delete_action_moves_to_the_trash_and_purge_removes_content(admin_client, client, store):
    file_id = upload(client, payload(3 * C), name="doomed.bin")["file_id"]
    download(client, file_id)  # now cached

    response = admin_client.post(
        "/admin/files/file/", {"action": "trash_selected", "_selected_action": [file_id]}
    )

    assert response.status_code == 302
    assert File.objects.get(pk=file_id).trash_id is not None
    assert client.get(f"/read/{file_id}").status_code == 404  # on every worker: a tombstone
    assert len(stored_keys(store)) == 3
    item = TrashEntry.objects.get()
    purged = admin_client.post(
        "/admin/files/trashentry/", {"action": "purge", "_selected_action": [item.id]}
    )
    assert purged.status_code == 302
    assert not File.objects.filter(pk=file_id).exists()
    assert stored_keys(store) == []


class UnreadableBody(io.BytesIO):
    """A request body that fails the test if anything reads it."""

    def read(self, *args, **kwargs):
        raise AssertionError("the upload's body was read")

    readline = read


def test_upload_over_the_limit_is_refused_from_content_length_unread(admin_client, settings):
    settings.MAX_UPLOAD_BYTES = 10 * C

    response = admin_client.generic(
        "POST",
        reverse("admin:files_file_upload"),
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
        **{"wsgi.input": UnreadableBody()},
    )

    assert response.status_code == 413
    assert response["Connection"] == "close"
    assert "the limit is" in response.content.decode()
    assert not File.objects.exists()


def test_upload_form_still_needs_its_csrf_token(admin_user, settings):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    response = browser.post(
        reverse("admin:files_file_upload"), {"file": SimpleUploadedFile("x.bin", b"abc")}
    )

    assert response.status_code == 403
    assert not File.objects.exists()


@pytest.mark.parametrize("selected", ["not-a-uuid", "1' OR '1'='1", "x" * 5000])
def test_a_malformed_selected_id_is_a_message_not_a_server_error(admin_client, selected):
    response = admin_client.post(
        "/admin/files/file/",
        {"action": "verify_integrity", "_selected_action": [selected]},
        follow=True,
    )

    assert response.status_code == 200
    assert "is not a valid id: nothing was done" in response.content.decode()


def test_admin_login_is_throttled_after_repeated_failures(client, admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    form = {"username": admin_user.username, "password": "wrong", "next": "/admin/"}

    failures = [client.post("/admin/login/", form).status_code for _ in range(3)]
    with_the_right_password = client.post("/admin/login/", {**form, "password": "password"})

    assert failures == [200, 200, 429]  # the form again, twice; then locked out
    assert with_the_right_password.status_code == 429
    assert "_auth_user_id" not in client.session


def test_admin_login_works_after_a_mistake(client, admin_user):
    form = {"username": admin_user.username, "next": "/admin/"}

    assert client.post("/admin/login/", {**form, "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/", {**form, "password": "password"}).status_code == 302


# --- resumable uploads ---------------------------------------------------------------------------


def test_resumable_uploads_in_progress_are_listed_with_their_progress(admin_client, client):
    halfway = tus_create(client, 4 * C)
    assert tus_patch(client, halfway, payload(C), 0).status == 204
    unknown = tus_create(client, None)  # Upload-Defer-Length: the length comes later
    done = tus_create(client, 10)
    assert tus_patch(client, done, payload(10), 0).status == 204

    page = admin_client.get("/admin/files/upload/").content.decode()

    assert "25% (16.0\xa0KB)" in page
    assert "(length not told yet)" in page
    assert done.rsplit("/", 1)[1] not in page  # a file now: listed with the files
    detail = admin_client.get(f"/admin/files/upload/{unknown.rsplit('/', 1)[1]}/change/")
    assert detail.status_code == 200


def test_terminate_action_deletes_the_upload_and_what_it_stored(admin_client, client, store):
    path = tus_create(client, 4 * C)
    tus_patch(client, path, payload(C + 5), 0)
    upload_id = path.rsplit("/", 1)[1]
    assert stored_keys(store)

    response = admin_client.post(
        "/admin/files/upload/",
        {"action": "terminate", "_selected_action": [upload_id]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == [f"{upload_id}.bin: terminated"]
    assert not Upload.objects.exists()
    assert stored_keys(store) == []
    assert tus_head(client, path).status == 404


# --- owners and share links ----------------------------------------------------------------------


def test_files_show_and_filter_by_owner(admin_client, client):
    ann, token = make_user("ann")
    upload(WithToken(client, token), payload(10), "anns.bin")
    upload(client, payload(10), "no-ones.bin")  # the open API: no owner

    everyone = admin_client.get("/admin/files/file/").content.decode()
    anns = admin_client.get("/admin/files/file/", {"owner__id__exact": ann.pk}).content.decode()

    assert "anns.bin" in everyone and "no-ones.bin" in everyone
    assert "anns.bin" in anns and "no-ones.bin" not in anns


def test_share_links_are_listed_with_their_state_and_revoked_from_the_admin(admin_client, client):
    _, token = make_user("ann")
    as_ann = WithToken(client, token)
    file_id = upload(as_ann, payload(10), "shared.bin")["file_id"]
    made = json.loads(send(as_ann, "POST", f"/files/{file_id}/links").body)
    path = "/s/" + made["url"].rsplit("/", 1)[1]

    listing = admin_client.get("/admin/files/sharelink/").content.decode()
    admin_client.post(
        "/admin/files/sharelink/", {"action": "revoke", "_selected_action": [made["link_id"]]}
    )

    assert "shared.bin" in listing and ">live<" in listing
    assert made["url"].rsplit("/", 1)[1] not in listing  # the token itself is never shown
    assert send(client, "GET", path).status == 404
    assert ">revoked<" in admin_client.get("/admin/files/sharelink/").content.decode()


def test_staff_browse_folders_and_restore_from_the_trash_and_old_versions(admin_client, client):
    first = json.loads(send(client, "PUT", "/write?path=/lab/run/data.csv", b"first").body)
    send(client, "PUT", "/write?path=/lab/run/data.csv", b"second")
    folders = admin_client.get("/admin/files/folder/?q=run")
    assert folders.status_code == 200 and b"/lab/run" in folders.content

    versions = admin_client.get(f"/admin/files/version/?q={first['file_id']}")
    assert versions.status_code == 200
    restored = admin_client.post(
        "/admin/files/version/",
        {"action": "make_current", "_selected_action": [first["version_id"]]},
    )
    assert restored.status_code == 302
    assert download(client, first["file_id"]) == b"first"

    assert client.delete(f"/files/{first['file_id']}").status_code == 204
    trash = admin_client.get("/admin/files/trashentry/")
    assert b"/lab/run/data.csv" in trash.content
    item = TrashEntry.objects.get()
    put_back = admin_client.post(
        "/admin/files/trashentry/", {"action": "put_back", "_selected_action": [item.id]}
    )
    assert put_back.status_code == 302
    assert download(client, first["file_id"]) == b"first"
    assert path_of(File.objects.get(pk=first["file_id"])) == "/lab/run/data.csv"
