"""The Django admin of the files app: stored files (files.py), resumable uploads in progress
(uploads.py) and share links (links.py)."""

from files.admin import files, links, uploads  # noqa: F401  (each module registers its admin)
