"""GET /health (liveness, no dependency) and GET /health/ready (every dependency answers)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_liveness_is_ok_without_dependencies(client, settings, django_assert_num_queries):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"  # even with storage unreachable

    with django_assert_num_queries(0):
        response = client.get("/health")

    assert (response.status_code, response.content) == (200, b"OK")


@pytest.mark.both_stores
def test_ready_when_every_dependency_answers(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "cache": True,
        "storage": True,
    }


def test_not_ready_when_storage_is_down(client, settings):
    settings.MINIO_ENDPOINT = "127.0.0.1:9"
    settings.STORAGE_MAX_ATTEMPTS = 1
    settings.API_TOKEN = "t"  # the details are for requests with credentials

    response = client.get("/health/ready", HTTP_AUTHORIZATION="Bearer t")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (checks["storage"]["ok"], checks["database"]["ok"]) == (False, True)
    assert "StorageUnavailable" in checks["storage"]["detail"]


def test_not_ready_when_redis_is_down(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "IGNORE_EXCEPTIONS": True},
        }
    }

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["ok"] is False


def test_health_endpoints_answer_only_get_and_head(client):
    response = client.post("/health")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"
