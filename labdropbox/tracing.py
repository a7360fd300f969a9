"""OpenTelemetry set-up: once per process, after gunicorn forks.

`configure_tracing()` builds the TracerProvider (resource `service.name`), adds a batched OTLP/HTTP
export when JAEGER_ENDPOINT (or a standard OTEL_EXPORTER_OTLP_* endpoint) is set, and switches on
the contrib instrumentation of botocore, Redis and the database driver. Server spans come from
the WSGI middleware (`wrap_wsgi`), which ends its span only when the response body has been sent:
Django's own instrumentation ends it when the view returns, before a streamed file is written.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")

_lock = threading.Lock()
_provider: TracerProvider | None = None

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


# Every request is recorded, even one whose trusted parent says "not sampled" (-00): a client
# must not be able to switch off the record of our own operations.
ALWAYS_RECORD = ParentBased(root=ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)


def otlp_traces_url(jaeger_endpoint: str) -> str:
    """JAEGER_ENDPOINT is the OTLP/HTTP base URL; `host:port` alone means plain http."""
    base = jaeger_endpoint if "://" in jaeger_endpoint else f"http://{jaeger_endpoint}"
    return base.rstrip("/") + "/v1/traces"


def otlp_export_processor() -> BatchSpanProcessor | None:
    """Batched OTLP/HTTP export, if an endpoint is configured. The batch is sent from a
    background thread with a short timeout: a collector that is down or stalls costs dropped
    spans, never a slower request."""
    if not (settings.JAEGER_ENDPOINT or any(os.environ.get(v) for v in OTLP_ENDPOINT_VARIABLES)):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = otlp_traces_url(settings.JAEGER_ENDPOINT) if settings.JAEGER_ENDPOINT else None
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=settings.OTLP_TIMEOUT_SECONDS)
    return BatchSpanProcessor(exporter, export_timeout_millis=settings.OTLP_TIMEOUT_SECONDS * 1000)


_enduser: ContextVar[str | None] = ContextVar("enduser", default=None)


@contextmanager
def acting_for(enduser: str) -> Iterator[None]:
    """Spans started inside carry `enduser.id`: who the request acts for."""
    reset = _enduser.set(enduser)
    try:
        yield
    finally:
        _enduser.reset(reset)


class EnduserProcessor(SpanProcessor):
    """Puts the acting user on every span started while one is set (see acting_for)."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        enduser = _enduser.get()
        if enduser is not None:
            span.set_attribute("enduser.id", enduser)


# Processors that apps add to the defaults when they are ready (traces: its recorder), so that
# this module needs to know none of them.
_app_processors: list[Callable[[], SpanProcessor | None]] = []
_uses_defaults = False


def add_default_processor(make: Callable[[], SpanProcessor | None]) -> None:
    """Make `make()` one of the default processors: added to the provider now if it was set up
    with the defaults (gunicorn sets it up before Django loads the apps), else when one is."""
    with _lock:
        _app_processors.append(make)
        if _provider is not None and _uses_defaults:
            processor = make()
            if processor is not None:
                _provider.add_span_processor(processor)


def default_processors() -> list[SpanProcessor]:
    """The OTLP export (if configured) and the apps' processors (the trace recorder)."""
    made = [otlp_export_processor(), *(make() for make in _app_processors)]
    return [processor for processor in made if processor is not None]


def configure_tracing(processors: list[SpanProcessor] | None = None) -> TracerProvider:
    """Set up tracing for this process; later calls return the provider already set up.

    `processors` replaces the default ones (the tests keep spans in memory instead).
    """
    global _provider, _uses_defaults
    with _lock:
        if _provider is not None:
            return _provider
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.SERVICE_NAME}),
            sampler=ALWAYS_RECORD,
        )
        # First: the exporters see spans with their enduser.id.
        provider.add_span_processor(EnduserProcessor())
        _uses_defaults = processors is None
        for processor in default_processors() if processors is None else processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        instrument_libraries()
        _provider = provider
        log.info("tracing on as %s", settings.SERVICE_NAME)
        return provider


def shutdown_tracing() -> None:
    """Flush and stop the exporters (gunicorn's worker_exit)."""
    if _provider is not None:
        _provider.shutdown()


def _forget_provider() -> None:
    # A forked child starts without the parent's export thread: it must set up its own.
    global _provider, _lock
    _provider, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_provider)


class Instrumentor(Protocol):
    """What the contrib instrumentors have in common (their base class is untyped)."""

    is_instrumented_by_opentelemetry: bool

    def instrument(self) -> None: ...


def instrument_libraries() -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    instrumentors: list[Instrumentor] = [
        BotocoreInstrumentor(),
        RedisInstrumentor(),
        SQLite3Instrumentor(),
    ]
    if settings.TIDB_HOST:
        from opentelemetry.instrumentation.mysqlclient import MySQLClientInstrumentor

        instrumentors.append(MySQLClientInstrumentor())
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


# A share link's path is its secret: spans (the recorder's, Jaeger's) keep only the route.
SHARE_LINK_PREFIX = "/s/"
URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")


def _start_server_span(span: trace.Span, environ: dict) -> None:
    # Until the URL resolves to a route (RouteSpanNameMiddleware), name the span by its method
    # only: raw paths carry ids and would make every request's name unique.
    span.update_name(environ.get("REQUEST_METHOD", "HTTP"))
    path = environ.get("PATH_INFO", "")
    if path.startswith(SHARE_LINK_PREFIX):
        secret = path[: len(SHARE_LINK_PREFIX) + len(path[3:].split("/", 1)[0])]
        attributes = getattr(span, "attributes", None) or {}
        for name in URL_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str):
                span.set_attribute(name, value.replace(secret, "/s/{token}"))
    client_context = environ.get(CLIENT_CONTEXT_KEY)
    if client_context:
        # The client's own trace, kept as a link rather than as our parent.
        linked = TraceContextTextMapPropagator().extract(client_context)
        linked_span = trace.get_current_span(linked).get_span_context()
        if linked_span.is_valid:
            span.add_link(linked_span, {"link.kind": "client_traceparent"})


# The W3C trace context and baggage a client may send, as WSGI environ keys.
INCOMING_CONTEXT_KEYS = {"HTTP_TRACEPARENT": "traceparent", "HTTP_TRACESTATE": "tracestate"}
BAGGAGE_KEY = "HTTP_BAGGAGE"
CLIENT_CONTEXT_KEY = "labdropbox.client_context"


class IncomingContextFilter:
    """Unless OTEL_TRUST_INCOMING_CONTEXT is on, a client's trace context does not become ours.

    Trusted, a `traceparent` makes our spans children of the client's trace — and its flags
    decide whether we record at all (-00 switches our recording off), and two clients sending
    one trace id end up in one trace. Untrusted (the default), every request starts a trace of
    its own and the client's context is kept as a span link. Behind a gateway that traces
    requests itself, turn it on.
    """

    def __init__(self, application: Callable) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if not settings.OTEL_TRUST_INCOMING_CONTEXT:
            environ.pop(BAGGAGE_KEY, None)
            carried = {
                header: environ.pop(key)
                for key, header in INCOMING_CONTEXT_KEYS.items()
                if key in environ
            }
            if carried:
                environ[CLIENT_CONTEXT_KEY] = carried
        return self.application(environ, start_response)


def _add_traceresponse(span: trace.Span, environ: dict, status: str, headers: list) -> None:
    """`traceresponse: 00-<trace-id>-<span-id>-01` on every response, so a curl user can paste
    the trace id into Jaeger. Written here rather than by the contrib TraceResponsePropagator,
    which copies every trace flag (the SDK now also sets the level-2 "random" flag, giving -03)
    where the API promises the plain sampled flag."""
    context = span.get_span_context()
    if context.is_valid:
        flags = "01" if context.trace_flags.sampled else "00"
        headers.append(
            ("traceresponse", f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}")
        )


def wrap_wsgi(application: Callable) -> Callable:
    """The Django application inside the server span (which ends after the body is sent),
    itself inside the filter of the client's trace context."""
    traced = OpenTelemetryMiddleware(
        application, request_hook=_start_server_span, response_hook=_add_traceresponse
    )
    return IncomingContextFilter(traced)


# Where the matched URL pattern is left for the metrics, in the WSGI environ (request.META).
ROUTE_ENVIRON_KEY = "labdropbox.route"


class RouteSpanNameMiddleware:
    """Names the server span after the matched URL pattern, `GET /read/{file_id}`, and leaves
    the pattern in the request's environ for the HTTP metrics (metrics/http.py)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        match = request.resolver_match
        if match is None:
            return
        route = "/" + route_template(match.route)
        request.META[ROUTE_ENVIRON_KEY] = route
        span = trace.get_current_span()
        is_server_span = getattr(span, "kind", None) == trace.SpanKind.SERVER
        if span.is_recording() and is_server_span:
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)


@functools.lru_cache(maxsize=64)
def route_template(route: str) -> str:
    """`read/<str:file_id>` -> `read/{file_id}`."""
    return ROUTE_PARAMETER.sub(r"{\1}", route)
