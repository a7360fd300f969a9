"""Calling the real WSGI application (tracing middleware included) in the test process."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit
from wsgiref.util import setup_testing_defaults

from django.core import signals
from django.db import close_old_connections


@dataclass
class WsgiResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    error: BaseException | None = field(default=None)


def call_wsgi(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> WsgiResponse:
    """One request through labdropbox.wsgi.application, as gunicorn would make it.

    An error raised while the body streams is returned, not raised, like a cut connection.
    """
    from labdropbox.wsgi import application

    parts = urlsplit(url)
    environ: dict = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote(parts.path),
        "QUERY_STRING": parts.query,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "localhost",
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    started: dict = {}

    def start_response(status: str, response_headers: list, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    # Like Django's test client: the test's transaction must outlive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        pieces, error = [], None
        try:
            for piece in result:
                pieces.append(piece)
        except Exception as exc:  # the connection would be cut here
            error = exc
        finally:
            result.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return WsgiResponse(started["status"], started["headers"], b"".join(pieces), error)
