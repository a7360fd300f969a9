"""A real Prometheus scrapes gunicorn (3 workers, MariaDB + Redis + S3) while a bounded load
runs, and counts exactly what the load sent: the workers' samples add up, none is lost."""

from __future__ import annotations

import os

import pytest

from bench.load import run_load
from testing.mysql import recreate_mysql_database
from testing.prometheus import PrometheusServer
from testing.servers import GunicornServer

C = 64 * 1024
COUNT = "http_server_request_duration_seconds_count"
ROUTES = '{http_route=~"/write|/read/.file_id.|/files/.file_id.|/files"}'


@pytest.mark.stack
def test_prometheus_counts_every_request_of_a_load_across_three_workers(s3_server, tmp_path):
    env = {
        **s3_server.service_env,
        "MINIO_BUCKET": "metrics",
        "CHUNK_SIZE_BYTES": str(C),
        "WEB_CONCURRENCY": "3",
        "TIDB_DATABASE": recreate_mysql_database(os.environ, "metrics"),
    }
    service = GunicornServer(tmp_path / "service", **env)
    prometheus = PrometheusServer(tmp_path / "prometheus", f"127.0.0.1:{service.port}")
    try:
        stats = run_load(service.url, clients=6, operations=150, chunk_size=C)
        kinds = stats.operations
        sent = {
            "/write": kinds["upload"],
            "/read/{file_id}": kinds["read"] + kinds["ranged read"] + kinds["snoop"],
            "/files/{file_id}": kinds["delete"],
            "/files": kinds["list"],
        }
        sent = {route: float(count) for route, count in sent.items() if count}
        counted = prometheus.wait_for(f"sum by (http_route) ({COUNT}{ROUTES})", sent, "http_route")
        buckets = prometheus.wait_for(
            f'sum by (http_route) (http_server_request_duration_seconds_bucket{{le="+Inf"}})'
            f" and sum by (http_route) ({COUNT}{ROUTES})",
            sent,
            "http_route",
        )
    finally:
        prometheus.stop()
        service.stop()

    assert stats.server_errors == [] and stats.mismatches == []
    assert counted == sent
    assert buckets == sent  # the +Inf bucket of each histogram holds every request
