"""GET /openapi.json: a valid OpenAPI 3.1 document of every endpoint, true to the running views."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from files import urls
from files.views.service import OPENAPI_DOCUMENT
from labdropbox.tracing import route_template
from testing.servers import PROJECT_DIR

DOCUMENT = json.loads(OPENAPI_DOCUMENT.read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "head", "patch", "options", "trace"}


def documented_operations() -> dict[str, set[str]]:
    return {
        path: {method for method in item if method in HTTP_METHODS}
        for path, item in DOCUMENT["paths"].items()
    }


def test_document_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


@pytest.mark.django_db
def test_every_url_pattern_and_method_is_documented_and_nothing_else(client):
    served = {}
    for pattern in urls.urlpatterns:
        route = "/" + route_template(str(pattern.pattern))
        # What each URL answers, asked of the running view: a method it does not take gets a
        # 405 that lists the ones it does.
        response = client.generic("TRACE", route.replace("{file_id}", str(uuid.uuid4())))
        assert response.status_code == 405, route
        served[route] = {method.strip().lower() for method in response["Allow"].split(",")}

    assert served == documented_operations()


@pytest.mark.django_db
def test_the_service_serves_the_document(client):
    assert client.get("/openapi.json").json() == DOCUMENT


def test_the_api_reference_covers_every_operation():
    reference = (PROJECT_DIR / "docs" / "api.md").read_text()

    for path, methods in documented_operations().items():
        for method in methods:
            operation = re.escape(f"{method.upper()} {path}")
            assert re.search(rf"`{operation}(\?[^`]*)?`", reference), f"{method.upper()} {path}"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(service, tmp_path: Path):
    """Property-based requests (bounded) against the gunicorn-run service, as a user with a
    token; which checks, and why not the others: testing/schemathesis.toml."""
    token = service.manage("create_token", "schemathesis", "--create-user").stdout.strip()
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(PROJECT_DIR / "testing" / "schemathesis.toml"),
            "run",
            f"http://127.0.0.1:{service.port}/openapi.json",
            "--max-examples", "25",
            "--workers", "1",
            "--seed", "20261126",
            "--header", f"Authorization: Bearer {token}",
        ],
        cwd=tmp_path,  # its example database stays out of the checkout
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_DIR),
            "SCHEMATHESIS_HOOKS": "testing.schemathesis_hooks",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout[-6000:]
    # Warnings may remain (random upload ids are mostly unknown: 404s); no failure, no error.
    assert "Failures:" not in run.stdout
    assert "Errors:" not in run.stdout
    assert re.search(r"\b[1-9]\d* passed", run.stdout)
