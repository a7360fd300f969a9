"""The compose stack's Prometheus configuration and Grafana dashboard: valid, and asking only
for metrics the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from testing.servers import PROJECT_DIR

DASHBOARD = PROJECT_DIR / "deploy" / "grafana" / "labdropbox.json"
PROMETHEUS_CONFIG = PROJECT_DIR / "deploy" / "prometheus" / "prometheus.yml"
OUR_METRIC = re.compile(r"\b((?:http_server|labdropbox|db_client)_[a-z_]+)\b")
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")


def test_promtool_accepts_the_compose_prometheus_config():
    assert shutil.which("promtool"), "promtool is not installed (Debian's prometheus package)"

    checked = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_the_app_on_its_metrics_path():
    job = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]

    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["app:8080"]


@pytest.mark.django_db
def test_every_dashboard_query_names_a_metric_the_service_exports(client):
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
        for suffix in SUFFIXES
    }
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [target["expr"] for panel in panels for target in panel["targets"]]

    named = {name for query in queries for name in OUR_METRIC.findall(query)}
    assert named, "the dashboard queries nothing"
    assert named <= exported, named - exported
    titles = " ".join(panel["title"] for panel in panels).lower()
    for subject in ("route", "s3", "cache", "bytes", "in progress", "errors"):
        assert subject in titles, subject
