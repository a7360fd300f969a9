"""The files app's models, by concern: where files are (`tree`: Entry, File, Folder,
TrashEntry), what is stored (`content`: Blob, Chunk, Version), resumable uploads in progress
(`uploads`) and share links (`links`).

The tables are shaped for TiDB as much as for SQLite and MySQL: primary keys are random UUIDs, so
inserts spread over all regions instead of piling onto the last one, and chunk rows have the
primary key (blob id, chunk index), so a blob's chunk rows sit together in the clustered index
and are read back with one range scan.
"""

from files.models.content import Blob, Chunk, Version
from files.models.links import BYTE_CEILING_PER_DOWNLOAD, ShareLink
from files.models.tree import Entry, File, Folder, TrashEntry
from files.models.uploads import Upload, UploadChunk

__all__ = [
    "BYTE_CEILING_PER_DOWNLOAD",
    "Blob",
    "Chunk",
    "Entry",
    "File",
    "Folder",
    "ShareLink",
    "TrashEntry",
    "Upload",
    "UploadChunk",
    "Version",
]
