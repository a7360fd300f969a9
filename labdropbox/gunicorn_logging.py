"""gunicorn's logger, with secrets kept out of its error and access logs: a share link's path
is its secret (only a hash of it is stored), so the access log shows `/s/{token}` instead, and
every line goes through the same filter as Django's (labdropbox/redaction.py)."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from labdropbox.redaction import RedactSecrets

SHARE_LINK_PATH = re.compile(r"/s/[^/?# ]+")


class RedactingLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactSecrets())

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        if environ.get("PATH_INFO", "").startswith("/s/"):
            for name in ("r", "U"):
                atoms[name] = SHARE_LINK_PATH.sub("/s/{token}", atoms[name], count=1)
        return atoms
