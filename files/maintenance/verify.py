"""Re-reading stored content: every chunk of a blob, its size and SHA-256 checked."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings

from files import spans
from files.buffers import chunk_budget
from files.io_pool import map_bounded
from files.metadata import ChunkMeta
from files.models import Blob, Chunk, Entry, Version
from files.pipeline.fetch import Piece, fetch_piece, plan_pieces
from files.spans import tracer
from files.storage import ChunkStore, get_store
from labdropbox.api.errors import ChunkCorrupt, ChunkNotFound, FileNotFound


@dataclass(frozen=True)
class Content:
    """One blob as it is to be read back: its size and chunk list."""

    blob_id: uuid.UUID
    size: int
    chunks: tuple[ChunkMeta, ...]

    @classmethod
    def of(cls, blob: Blob) -> Content:
        rows = Chunk.objects.filter(blob=blob).order_by("index")
        chunks = tuple(ChunkMeta(c.index, c.size, c.sha256, c.key) for c in rows)
        return cls(blob.id, blob.size, chunks)


def problem_with_piece(store: ChunkStore, piece: Piece) -> str | None:
    """What is wrong with one chunk object, or None."""
    try:
        with chunk_budget().holding(piece.length, owner=object()):
            fetch_piece(store, piece)
    except ChunkNotFound:
        return f"chunk {piece.index} is missing ({piece.key})"
    except ChunkCorrupt as exc:
        return f"chunk {piece.index} is corrupt: {exc}"
    return None


def verify_content(content: Content, store: ChunkStore | None = None) -> list[str]:
    """Re-read every chunk of a blob and check its size and SHA-256; the problems found."""
    store = store or get_store()
    with tracer.start_as_current_span(
        spans.VERIFY_FILE, attributes={"blob.id": str(content.blob_id)}
    ):
        problems = []
        if [chunk.index for chunk in content.chunks] != list(range(len(content.chunks))):
            problems.append("chunk rows are not numbered 0..n-1")
        if sum(chunk.size for chunk in content.chunks) != content.size:
            problems.append("chunk sizes do not add up to the content's size")
        found = map_bounded(
            lambda piece: problem_with_piece(store, piece),
            plan_pieces(content),
            settings.READ_CONCURRENCY,
        )
        problems.extend(problem for problem in found if problem)
        return problems


@dataclass(frozen=True)
class Checked:
    label: str  # what is reported: a file's id and name, and which version
    size: int
    problems: list[str]


def versions_to_check(file_ids: Iterable[uuid.UUID]) -> list[Version]:
    """Every version of each file, oldest first (FileNotFound for an id that names no file)."""
    versions: list[Version] = []
    for file_id in file_ids:
        if not Entry.objects.filter(pk=file_id, kind=Entry.Kind.FILE).exists():
            raise FileNotFound(str(file_id))
        versions.extend(
            Version.objects.filter(file_id=file_id)
            .select_related("blob", "file")
            .order_by("created_at")
        )
    return versions


def verify_versions(versions: list[Version]) -> Iterator[Checked]:
    store = get_store()
    for version in versions:
        file = version.file
        label = f"{file.id} {file.name}"
        if version.id != file.current_id:
            label += f" (version {version.id})"
        content = Content.of(version.blob)
        yield Checked(label, content.size, verify_content(content, store))


def verify_everything() -> Iterator[Checked]:
    """Every stored blob: what files, their versions and the trash keep."""
    store = get_store()
    for blob in (
        Blob.objects.filter(state=Blob.State.STORED).order_by("created_at", "id").iterator()
    ):
        content = Content.of(blob)
        user = Version.objects.filter(blob=blob).select_related("file").first()
        label = f"{blob.id} {user.file.name}" if user is not None else f"{blob.id}"
        yield Checked(label, content.size, verify_content(content, store))


def stored_blob_count() -> int:
    return Blob.objects.filter(state=Blob.State.STORED).count()
