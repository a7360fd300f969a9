"""The tracer of the file operations and the names of their spans, in one place.

A read:  read_file › cache_lookup, db_lookup (on a miss), fetch_chunk_metadata,
         fetch_chunks_parallel › download_chunk_{i}, reassemble_chunks; a share link's read
         is the same tree under read_shared_file (with share_link.id)
A write: write_file › chunk_stream, upload_chunks › upload_chunk_{i}, save_metadata,
         invalidate_cache
A PATCH: append_upload › chunk_stream, upload_chunks › upload_chunk_{i}, save_progress (as
         chunks are stored), save_partial_chunk (a request ending mid-chunk), and on the
         upload's last byte save_metadata, invalidate_cache;
         beside it create_upload, terminate_upload and concatenate_uploads
The tree: list_folder, create_folder, move_file, move_folder, copy_file, copy_folder, trash,
         restore, purge, restore_version (with entry.id, entry.path, trash.id, version.id)
The trace recorder keeps traces that contain a span of a `labdropbox.*` tracer such as this one.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

tracer = trace.get_tracer("labdropbox.files")

READ_FILE = "read_file"
READ_SHARED_FILE = "read_shared_file"  # a share link's read: read_file's tree beneath it
CACHE_LOOKUP = "cache_lookup"
DB_LOOKUP = "db_lookup"
FETCH_CHUNK_METADATA = "fetch_chunk_metadata"
FETCH_CHUNKS_PARALLEL = "fetch_chunks_parallel"
REASSEMBLE_CHUNKS = "reassemble_chunks"

WRITE_FILE = "write_file"
CHUNK_STREAM = "chunk_stream"
UPLOAD_CHUNKS = "upload_chunks"
SAVE_METADATA = "save_metadata"
INVALIDATE_CACHE = "invalidate_cache"

CREATE_UPLOAD = "create_upload"
APPEND_UPLOAD = "append_upload"
SAVE_PROGRESS = "save_progress"
SAVE_PARTIAL_CHUNK = "save_partial_chunk"
TERMINATE_UPLOAD = "terminate_upload"
CONCATENATE_UPLOADS = "concatenate_uploads"

VERIFY_FILE = "verify_file"

LIST_FOLDER = "list_folder"
CREATE_FOLDER = "create_folder"
MOVE_FILE = "move_file"
MOVE_FOLDER = "move_folder"
COPY_FILE = "copy_file"
COPY_FOLDER = "copy_folder"
TRASH = "trash"
RESTORE = "restore"
PURGE = "purge"
RESTORE_VERSION = "restore_version"


def download_chunk(index: int) -> str:
    return f"download_chunk_{index}"


def upload_chunk(index: int) -> str:
    return f"upload_chunk_{index}"


def storage_call(method: str) -> str:
    """A call of a Django storage backend (CHUNK_STORAGE=django): `Storage.open`…"""
    return f"Storage.{method}"


def file_attributes(file_id: object, name: str, size: int, chunk_count: int) -> dict:
    """The attributes every file operation span carries."""
    return {
        "file.id": str(file_id),
        "file.name": name,
        "file.size": size,
        "file.chunk_count": chunk_count,
    }


def chunk_attributes(index: int, size: int, key: str) -> dict:
    return {"chunk.index": index, "chunk.size": size, "chunk.key": key}


def mark_failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
