"""A test client that calls the real WSGI application — tracing middleware included, as gunicorn
would — in the test process, and reads the trace a request produced."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from wsgiref.util import setup_testing_defaults

from django.core import signals
from django.db import close_old_connections
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

TRACERESPONSE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


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
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    setup_testing_defaults(environ)
    started: dict = {}

    def start_response(
        status: str, response_headers: list, exc_info: OptExcInfo | None = None
    ) -> None:
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


class WsgiApp:
    """The application as an upload/download target (testing.uploads): request() answers
    (status, headers, body), an error raised mid-body ending the body there."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        response = call_wsgi(method, path, body or b"", headers)
        return response.status, response.headers, response.body


wsgi_app = WsgiApp()


class Trace:
    """The finished spans of one request, with parent/child navigation."""

    @classmethod
    def of(cls, exporter: InMemorySpanExporter, response: WsgiResponse) -> Trace:
        """The spans of the trace named in the response's traceresponse header (a fetch that an
        earlier, failed read abandoned may still be finishing its span in the background)."""
        match = TRACERESPONSE.match(response.headers["traceresponse"])
        assert match is not None
        trace_id = int(match.group(1), 16)
        return cls(s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id)

    def __init__(self, spans: Iterable[ReadableSpan]) -> None:
        self.spans = list(spans)
        ids = {span.context.span_id for span in self.spans}
        self.roots = [s for s in self.spans if s.parent is None or s.parent.span_id not in ids]

    def one(self, name: str) -> ReadableSpan:
        found = [span for span in self.spans if span.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name}"
        return found[0]

    def named(self, prefix: str) -> list:
        return sorted(
            (span for span in self.spans if span.name.startswith(prefix)), key=lambda s: s.name
        )

    def children(self, parent: ReadableSpan) -> list:
        return [
            span
            for span in self.spans
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]

    def child_names(self, parent: ReadableSpan) -> set[str]:
        return {span.name for span in self.children(parent)}
