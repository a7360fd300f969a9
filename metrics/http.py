"""HTTP metrics, taken around the whole WSGI application: a request is measured until the server
closes its body (a streamed download's last byte), and its body bytes as they are read and sent.
The route is the matched URL pattern (`/read/{file_id}`), never the path itself."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.urls import Resolver404, get_resolver

from labdropbox.api.bodies import CountedBody
from labdropbox.tracing import ROUTE_ENVIRON_KEY, route_template
from metrics.registry import (
    HTTP_ACTIVE,
    HTTP_DURATION,
    HTTP_REQUEST_BODY,
    HTTP_RESPONSE_BODY,
    labelled,
)

# Any other method is counted as _OTHER (OpenTelemetry's convention): a client cannot add labels.
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
WEBDAV_METHODS = {"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK"}
KNOWN_METHODS = HTTP_METHODS | WEBDAV_METHODS
UNMATCHED = "unmatched"


def measure_wsgi(application: Callable) -> Callable:
    """`application` with HTTP metrics, unless METRICS_ENABLED is off."""

    @functools.wraps(application)
    def measured(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not settings.METRICS_ENABLED:
            return application(environ, start_response)
        request = MeasuredRequest(environ)
        try:
            body = application(environ, request.start_response(start_response))
        except BaseException:
            request.finish(0)
            raise
        return CountedBody(body, request.finish)

    return measured


class MeasuredRequest:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.started = time.perf_counter()
        self.environ = environ
        method = environ.get("REQUEST_METHOD", "")
        self.method = method if method in KNOWN_METHODS else "_OTHER"
        self.status = "500"  # unless the application starts a response
        self.input = CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = self.input
        self.active = labelled(HTTP_ACTIVE, self.method)
        self.active.inc()

    def start_response(self, start_response: Callable) -> Callable:
        def started(status: str, headers: list, *exc_info: Any) -> Any:
            self.status = status.split(" ", 1)[0]
            return start_response(status, headers, *exc_info)

        return started

    def finish(self, sent: int) -> None:
        self.active.dec()
        # Matched by Django already (RouteSpanNameMiddleware); resolved here only for requests
        # that never reached a view (static files, unknown paths).
        route = self.environ.get(ROUTE_ENVIRON_KEY) or route_label(
            self.environ.get("PATH_INFO", "")
        )
        labels = (self.method, route, self.status)
        labelled(HTTP_DURATION, *labels).observe(time.perf_counter() - self.started)
        labelled(HTTP_REQUEST_BODY, *labels).observe(self.input.received)
        labelled(HTTP_RESPONSE_BODY, *labels).observe(sent)


class CountingInput:
    """The request's input stream, counting the bytes read from it."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.received = stream, 0

    def read(self, *size: int) -> bytes:
        data = self.stream.read(*size)
        self.received += len(data)
        return data

    def readline(self, *size: int) -> bytes:
        line = self.stream.readline(*size)
        self.received += len(line)
        return line

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.received += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def route_label(path: str) -> str:
    """The URL pattern that serves `path`, as `/read/{file_id}`; `unmatched` for none."""
    static = "/" + settings.STATIC_URL.strip("/") + "/"
    if path.startswith(static):
        return static + "{path}"
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return UNMATCHED
    return "/" + route_template(match.route)
