"""The Django admin of the files app: stored files (files.py), folders, versions and the trash
(tree.py), resumable uploads in progress
(uploads.py), share links (links.py) and users with their storage (users.py)."""

from files.admin import files, links, tree, uploads, users  # noqa: F401  (each registers its admin)
