"""Embedded mode's data folder and its generated secret key.

Importing settings writes nothing: it only reads the key file if there is one. The folder and
the key are created where the service starts or its database is migrated — gunicorn's master
(deploy/gunicorn.conf.py), `manage.py migrate` (files' migrate command) and labdropbox/wsgi.py —
so that every process of an instance reads the same key. This module reads the environment
itself: it runs before Django's settings exist.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from labdropbox.env import env_bool, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
KEY_FILE_NAME = "secret_key"


def data_dir() -> Path:
    return Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()


# Each of these puts the service's data or state outside this machine's DATA_DIR.
REMOTE_SETTINGS = ("MINIO_ENDPOINT", "TIDB_HOST", "REDIS_HOST", "CHUNK_STORAGE")


def runs_embedded() -> bool:
    """Nothing but DATA_DIR holds the service's data: none of REMOTE_SETTINGS is set."""
    return not any(env_str(name) for name in REMOTE_SETTINGS)


def key_is_generated() -> bool:
    """No SECRET_KEY is configured and the settings accept a generated one: embedded or DEBUG."""
    return not env_str("SECRET_KEY") and (runs_embedded() or env_bool("DEBUG", False))


def read_key_file(folder: Path) -> str:
    """The generated key in `folder`, or "" if none was generated yet."""
    try:
        return (folder / KEY_FILE_NAME).read_text().strip()
    except FileNotFoundError:
        return ""


def prepare_data_dir() -> None:
    """Create DATA_DIR, and the secret key in it when one is to be generated (once: an existing
    key is kept, or every session and signed value would be invalidated)."""
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if not key_is_generated():
        return
    key_file = folder / KEY_FILE_NAME
    try:
        # O_EXCL: of several processes starting at once, one writes the key, the others keep it.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_urlsafe(50))
