"""deploy/gunicorn.conf.py: the one gunicorn config of make run, the image and the benchmark."""

from __future__ import annotations

import runpy

import pytest
from django.core.exceptions import ImproperlyConfigured

from testing.servers import PROJECT_DIR

CONFIG = str(PROJECT_DIR / "deploy" / "gunicorn.conf.py")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("REDIS_HOST", "WEB_CONCURRENCY", "SERVICE_PORT", "SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_embedded_runs_one_guarded_thread_worker_on_8080(clean_env):
    config = runpy.run_path(CONFIG)

    assert config["worker_class"] == "labdropbox.gunicorn_worker.GuardedThreadWorker"
    assert config["workers"] == 1
    assert config["threads"] >= 64  # idle and slow clients each hold one
    assert config["bind"] == ["127.0.0.1:8080"]
    assert config["wsgi_app"] == "labdropbox.wsgi:application"


def test_with_redis_several_workers_share_the_cache(clean_env):
    clean_env.setenv("REDIS_HOST", "redis")
    clean_env.setenv("SERVICE_PORT", "9000")
    clean_env.setenv("SERVICE_HOST", "0.0.0.0")  # noqa: S104

    config = runpy.run_path(CONFIG)

    assert config["workers"] >= 2
    assert config["bind"] == ["0.0.0.0:9000"]


def test_several_workers_without_redis_are_refused(clean_env):
    clean_env.setenv("WEB_CONCURRENCY", "3")

    with pytest.raises(ImproperlyConfigured, match="needs REDIS_HOST"):
        runpy.run_path(CONFIG)
