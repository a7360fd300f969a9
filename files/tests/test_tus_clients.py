"""Real tus clients against the service under gunicorn: tuspy (PyPI) and tus-js-client under
Node (npm, installed by `make node-tools`). The downloaded files are byte-identical."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tusclient import client as tus
from tusclient.storage.filestorage import FileStorage

from testing.fixtures import SERVICE_CHUNK_SIZE
from testing.servers import PROJECT_DIR
from testing.uploads import download, payload

C = SERVICE_CHUNK_SIZE
UPLOAD_JS = PROJECT_DIR / "testing" / "tus-js" / "upload.cjs"


def file_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def a_file(tmp_path):
    def make(size: int, seed: int) -> tuple[Path, bytes]:
        data = payload(size, seed=seed)
        path = tmp_path / f"upload-{seed}.bin"
        path.write_bytes(data)
        return path, data

    return make


def test_tuspy_uploads_in_pieces_and_a_new_client_resumes_from_the_stored_url(
    service, a_file, tmp_path
):
    path, data = a_file(9 * C + 1234, seed=1)
    urls = FileStorage(str(tmp_path / "tus-urls.json"))
    first = tus.TusClient(f"{service.url}/uploads/").uploader(
        str(path),
        chunk_size=2 * C + 500,
        store_url=True,
        url_storage=urls,
        metadata={"filename": "py.bin"},
    )
    first.upload(stop_at=5 * C)  # then the client goes away

    second = tus.TusClient(f"{service.url}/uploads/").uploader(
        str(path), chunk_size=3 * C, store_url=True, url_storage=urls
    )
    assert second.url == first.url
    assert second.offset >= 5 * C  # it asked the server where to go on from
    second.upload()

    assert download(service, file_id(second.url)) == data


def test_tuspy_with_sha1_checksums(service, a_file):
    path, data = a_file(4 * C + 17, seed=2)
    uploader = tus.TusClient(f"{service.url}/uploads/").uploader(
        str(path), chunk_size=C + 3, upload_checksum=True
    )

    uploader.upload()

    assert download(service, file_id(uploader.url)) == data


def run_tus_js(service, path: Path, *arguments: str) -> dict:
    done = subprocess.run(
        [
            "node",
            str(UPLOAD_JS),
            "--endpoint",
            f"{service.url}/uploads/",
            "--file",
            str(path),
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], (result, done.stderr)
    return result


@pytest.mark.parametrize(
    "arguments",
    [
        ("--chunk-size", str(2 * C)),
        ("--parallel", "4", "--chunk-size", str(C)),
        ("--deferred", "--chunk-size", str(3 * C)),
        ("--data-during-creation", "--chunk-size", str(2 * C + 1)),
    ],
    ids=["chunked", "parallel-uploads", "length-deferred", "data-during-creation"],
)
def test_tus_js_client(service, a_file, arguments):
    path, data = a_file(7 * C + 4321, seed=3)

    name = f"js-{arguments[0].strip('-')}-{len(arguments)}.bin"  # a new file for each case
    result = run_tus_js(service, path, "--name", name, *arguments)

    assert download(service, file_id(result["url"])) == data
    meta = json.loads(service.request("GET", f"/files/{file_id(result['url'])}")[2])
    assert meta["file_name"] == name
