"""Real HTTP clients against the gunicorn-run service reproduce the exact bytes."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from testing.uploads import payload

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stored(service):
    """A 9 MiB file, enough for aria2c to open eight 1 MiB segments."""
    data = payload(9 * MIB + 12345, seed=3)
    status, _, body = service.request("PUT", "/write?name=big.bin", body=data)
    assert status == 201
    return data, f"http://127.0.0.1:{service.port}/read/{json.loads(body)['file_id']}"


def run(*command: str) -> None:
    assert shutil.which(command[0]), f"{command[0]} is not installed (see the README's Tests)"
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_curl_range(stored, tmp_path):
    data, url = stored
    out = tmp_path / "part"

    run("curl", "-sSf", "-r", "1000-2999999", "-o", str(out), url)

    assert out.read_bytes() == data[1000:3000000]


def test_curl_resumes_a_partial_download(stored, tmp_path):
    data, url = stored
    out = tmp_path / "resumed.bin"
    out.write_bytes(data[: 4 * MIB + 7])  # an interrupted download

    run("curl", "-sSf", "-C", "-", "-o", str(out), url)

    assert out.read_bytes() == data


def test_aria2c_parallel_segmented_download(stored, tmp_path, service):
    data, url = stored

    run(
        "aria2c", "-q", "-x", "8", "-s", "8", "--min-split-size=1M", "--allow-overwrite=true",
        "-d", str(tmp_path), "-o", "aria.bin", url,
    )  # fmt: skip

    assert (tmp_path / "aria.bin").read_bytes() == data
    ranged = [
        line for line in service.log_text().splitlines() if url[-36:] in line and '" 206 ' in line
    ]
    assert len(ranged) >= 8  # it really did fetch in parallel segments
