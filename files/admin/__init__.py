"""The Django admin of the files app: stored files (files.py) and resumable uploads in progress
(uploads.py)."""

from files.admin import files, uploads  # noqa: F401  (each module registers its model admin)
