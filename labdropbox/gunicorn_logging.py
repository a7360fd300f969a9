"""gunicorn's logger, with share links' tokens kept out of the access log: a link's path is its
secret (only a hash of it is stored), so the log shows `/s/{token}` instead."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

SHARE_LINK_PATH = re.compile(r"/s/[^/?# ]+")


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        if environ.get("PATH_INFO", "").startswith("/s/"):
            for name in ("r", "U"):
                atoms[name] = SHARE_LINK_PATH.sub("/s/{token}", atoms[name], count=1)
        return atoms
