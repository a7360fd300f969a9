"""The README and docs/ stay true: their examples run as written against a fresh service, the
configuration reference lists every variable the settings read, and the API reference names
every operation the OpenAPI document describes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from testing.docs_examples import SKIP, examples, script
from testing.mysql import recreate_mysql_database
from testing.servers import PROJECT_DIR, GunicornServer

DOCUMENTS = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
WITH_EXAMPLES = [doc for doc in DOCUMENTS if any(not e.skipped_because for e in examples(doc))]
# Where the settings, the data folder and the gunicorn worker read the environment.
SETTINGS_SOURCES = [
    "labdropbox/settings.py",
    "labdropbox/data_dir.py",
    "labdropbox/gunicorn_worker.py",
    "labdropbox/rate_floor.py",
    "deploy/gunicorn.conf.py",
]
# The files and folders an example may use by their relative path, as from a checkout.
CHECKOUT = (".venv", "manage.py", "labdropbox", "files", "accounts", "traces", "metrics",
            "testing", "bench", "deploy", "requirements", "Makefile")  # fmt: skip


def a_checkout_to_work_in(folder: Path) -> Path:
    """A folder that looks like the checkout (its entries linked) but keeps what the examples
    write (test.bin, downloads) out of the real one."""
    folder.mkdir()
    for name in CHECKOUT:
        (folder / name).symlink_to(PROJECT_DIR / name)
    return folder


@pytest.mark.parametrize("document", WITH_EXAMPLES, ids=lambda document: document.name)
def test_the_examples_of_a_document_run_as_written(document: Path, tmp_path: Path) -> None:
    settings = {"CHUNK_SIZE_BYTES": str(1024 * 1024), "MINIO_ENDPOINT": ""}
    if os.environ.get("TIDB_HOST"):
        settings["TIDB_DATABASE"] = recreate_mysql_database(os.environ, "docs")
    service = GunicornServer(tmp_path / "service", **settings)
    try:
        env = {
            **service.env,
            "NODE_PATH": str(PROJECT_DIR / "testing" / "tus-js" / "node_modules"),
        }
        runnable = [example for example in examples(document) if not example.skipped_because]
        done = subprocess.run(
            ["bash", "-c", script(runnable, service.url)],
            cwd=a_checkout_to_work_in(tmp_path / "work"),
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        service.stop()
    server_errors = re.findall(r'^.*" 5\d\d .*$', service.log_text(), re.MULTILINE)
    announced = re.findall(r"^--- example (\S+)$", done.stderr, re.MULTILINE)
    failed_in = announced[-1] if announced else "?"
    assert done.returncode == 0, f"the example at {failed_in} failed:\n{done.stderr[-3000:]}"
    assert len(announced) == len(runnable)
    assert server_errors == []


def test_every_skipped_example_says_why() -> None:
    for document in DOCUMENTS:
        markers = [line for line in document.read_text().splitlines() if SKIP.match(line)]
        assert len(markers) == len(
            [example for example in examples(document) if example.skipped_because]
        ), f"{document.name}: a skip marker above something that is not an example"


def test_the_configuration_reference_lists_every_variable_the_settings_read() -> None:
    source = "\n".join((PROJECT_DIR / path).read_text() for path in SETTINGS_SOURCES)
    read = set(re.findall(r"env_\w+\(\s*[\"']([A-Z0-9_]+)[\"']", source))
    # gunicorn's config reads the metrics folder from os.environ, as prometheus_client does.
    read.add("PROMETHEUS_MULTIPROC_DIR")
    rows = [line for line in (PROJECT_DIR / "docs" / "configuration.md").read_text().splitlines()
            if line.startswith("| `")]  # fmt: skip
    named = [set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row)) for row in rows]
    in_first_column = [set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])) for row in rows]

    assert read - set().union(*named) == set(), "read but not documented"
    assert set().union(*in_first_column) - read == set(), "documented but read nowhere"
