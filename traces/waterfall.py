"""Lay a recorded trace out as a waterfall: one bar per span on the trace's time axis, nested by
parent. The admin template only draws what this computes, so the geometry is tested here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from traces.models import RecordedSpan

# A bar thinner than this would vanish; it is drawn this wide (in % of the trace) instead.
MIN_WIDTH_PERCENT = 0.3
CACHE_SPANS = {"cache_lookup", "invalidate_cache"}
# A duration label needs about this much of the track (in %) beside its bar.
LABEL_ROOM = 85


@dataclass(frozen=True)
class Bar:
    span: RecordedSpan
    depth: int
    offset_ms: float
    duration_ms: float
    left: float  # percent of the trace's duration
    width: float  # percent of the trace's duration

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def label_position(self) -> str:
        """Where the duration label fits: after the bar, before it, or else inside it."""
        if self.right < LABEL_ROOM:
            return "after"
        if self.left > 100 - LABEL_ROOM:
            return "before"
        return "inside"

    @property
    def category(self) -> str:
        """What the span is, for its colour: a chunk download, an S3 call, the database…"""
        name, attributes = self.span.name, self.span.attributes
        system = attributes.get("db.system") or attributes.get("db.system.name")
        if name.startswith(("download_chunk_", "upload_chunk_")):
            return "download"
        if name.startswith("S3."):
            return "s3"
        if name in CACHE_SPANS or system == "redis":
            return "cache"
        if system:
            return "db"
        return "operation"


@dataclass(frozen=True)
class Waterfall:
    bars: list[Bar]
    duration_ms: float
    ticks: list[tuple[float, float]]  # (percent, milliseconds) for the time axis


def waterfall_layout(spans: list[RecordedSpan]) -> Waterfall:
    if not spans:
        return Waterfall([], 0.0, [])
    start = min(span.start_ns for span in spans)
    total_ns = max(max(span.end_ns for span in spans) - start, 1)
    ids = {span.span_id for span in spans}
    children: dict[str, list[RecordedSpan]] = defaultdict(list)
    roots = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.name)):
        if span.parent_id in ids:
            children[span.parent_id].append(span)
        else:
            roots.append(span)

    bars: list[Bar] = []

    def place(span: RecordedSpan, depth: int) -> None:
        left = min((span.start_ns - start) / total_ns * 100, 100 - MIN_WIDTH_PERCENT)
        width = max((span.end_ns - span.start_ns) / total_ns * 100, MIN_WIDTH_PERCENT)
        bars.append(
            Bar(
                span=span,
                depth=depth,
                offset_ms=(span.start_ns - start) / 1e6,
                duration_ms=(span.end_ns - span.start_ns) / 1e6,
                left=left,
                width=min(width, 100 - left),
            )
        )
        for child in children[span.span_id]:
            place(child, depth + 1)

    for root in roots:
        place(root, 0)
    percents = (0.0, 25.0, 50.0, 75.0, 100.0)
    ticks = [(percent, total_ns / 1e6 * percent / 100) for percent in percents]
    return Waterfall(bars, total_ns / 1e6, ticks)
