"""Deleting a file: its rows in one transaction, then its cache entry, then its chunk objects.

Chunk objects that cannot be deleted now (storage down) are left for `manage.py cleanup`, which
finds them because no committed file has their id any more.
"""

from __future__ import annotations

from django.db import transaction

from files import spans
from files.metadata import mark_deleted_in_cache, parse_file_id
from files.models import File
from files.spans import tracer
from files.storage import delete_chunk_objects, get_store
from labdropbox.api.callers import Caller
from labdropbox.api.errors import FileNotFound


def delete_file(raw_id: str, caller: Caller) -> File:
    """Delete the file with this id (FileNotFound if there is none the caller may see); the
    deleted File. Its share links go with it."""
    file_id = parse_file_id(raw_id)
    with tracer.start_as_current_span(spans.DELETE_FILE) as span:
        with transaction.atomic():
            file = File.objects.select_for_update().filter(pk=file_id).first()
            if file is None or not caller.may_access(file.owner_id):
                raise FileNotFound(str(file_id))
            span.set_attributes(file.span_attributes)
            # Read before the rows go: a concatenated file's chunks live under its parts' ids.
            keys = [chunk.key for chunk in file.chunks.order_by("index")]
            file.delete()
        with tracer.start_as_current_span(spans.INVALIDATE_CACHE):
            mark_deleted_in_cache(file_id)
        with tracer.start_as_current_span(spans.DELETE_CHUNKS):
            delete_chunk_objects(get_store(), file_id, keys)
    return file
