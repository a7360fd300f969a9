"""The benchmark's floor: the service's own settings and middleware, plus one trivial view."""

from labdropbox.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
