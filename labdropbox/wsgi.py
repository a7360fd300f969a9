"""WSGI entry point, loaded once per gunicorn worker (after the fork) and by runserver."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")

application = get_wsgi_application()

from files.storage import ensure_bucket_at_startup  # noqa: E402  (needs Django set up)

ensure_bucket_at_startup()
