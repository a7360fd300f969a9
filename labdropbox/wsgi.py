"""WSGI entry point, loaded once per gunicorn worker (after the fork) and by runserver."""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

from labdropbox.data_dir import prepare_data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
prepare_data_dir()  # before the settings read the key: a server started without `migrate`

django_application = get_wsgi_application()

# Imports that need Django set up.
from files.storage import ensure_bucket_at_startup  # noqa: E402
from labdropbox.tracing import configure_tracing, wrap_wsgi  # noqa: E402
from metrics.http import measure_wsgi  # noqa: E402

configure_tracing()  # under gunicorn, post_fork has already done it: this returns at once
application = wrap_wsgi(measure_wsgi(django_application))
ensure_bucket_at_startup()

# Everything loaded so far lives as long as the worker: take it out of the garbage collector's
# scans, which otherwise walk every Django and OpenTelemetry object again and again.
gc.freeze()
