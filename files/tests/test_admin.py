from __future__ import annotations

import pytest

from files.storage import chunk_key
from files.tests.conftest import TEST_CHUNK_SIZE
from files.tests.helpers import payload, upload

pytestmark = pytest.mark.django_db


def test_anonymous_user_is_sent_to_the_login_page(client):
    response = client.get("/admin/files/file/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_file_page_lists_its_chunks_with_object_keys(admin_client, client):
    file_id = upload(client, payload(2 * TEST_CHUNK_SIZE + 1), name="seen.bin")["file_id"]

    listing = admin_client.get("/admin/files/file/")
    detail = admin_client.get(f"/admin/files/file/{file_id}/change/")

    assert "seen.bin" in listing.content.decode()
    assert detail.status_code == 200
    for index in range(3):
        assert chunk_key(file_id, index) in detail.content.decode()
