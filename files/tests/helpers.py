"""Small helpers shared by the test modules."""

from __future__ import annotations

import hashlib
import random
from urllib.parse import quote

from django.test import Client


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes: every chunk differs, so a swapped chunk is caught."""
    return random.Random(size * 7919 + seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload(client: Client, data: bytes, name: str = "data.bin") -> dict:
    response = client.put(
        f"/write?name={quote(name)}",
        data=data,
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(len(data)),  # the test client leaves it out for an empty body
    )
    assert response.status_code == 201, response.content
    return response.json()


def download(client: Client, file_id: str) -> bytes:
    response = client.get(f"/read/{file_id}")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def unfinished_upload(name: str, declared: int, sent: int) -> bytes:
    """A raw HTTP/1.1 upload that promises `declared` body bytes and carries only `sent`."""
    head = f"PUT /write?name={quote(name)} HTTP/1.1\r\nHost: localhost\r\n"
    return f"{head}Content-Length: {declared}\r\n\r\n".encode() + payload(sent)
