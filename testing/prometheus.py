"""A real Prometheus (Debian's `prometheus` package) on a loopback port, scraping one target
every second, and its HTTP query API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

from testing.conditions import eventually
from testing.servers import HttpServer, free_port, stop, wait_until_healthy

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: labdropbox
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


class PrometheusServer(HttpServer):
    def __init__(self, folder: Path, target: str) -> None:
        assert shutil.which("prometheus"), "prometheus is not installed (Debian's package)"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(CONFIG.format(target=target))
        self.port = free_port()
        self._log = open(folder / "prometheus.log", "wb")  # noqa: SIM115  (its lifetime)
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.process, self.port, "/-/ready")

    def query(self, expression: str) -> list[dict]:
        """The instant vector of a PromQL expression."""
        url = f"{self.url}/api/v1/query?query={quote(expression)}"
        with urlopen(url, timeout=10) as response:  # noqa: S310  (our own loopback server)
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for(
        self, expression: str, expected: dict[str, float], by: str, timeout: float = 30
    ) -> dict[str, float]:
        """Wait until the expression's series, keyed by label `by`, are `expected` (the target is
        scraped every second), and return them; fail with what Prometheus last answered if they
        are not within `timeout` seconds."""
        found: dict[str, float] = {}

        def as_expected() -> bool:
            nonlocal found
            found = {
                row["metric"].get(by, ""): float(row["value"][1]) for row in self.query(expression)
            }
            return found == expected

        try:
            eventually(as_expected, timeout)
        except AssertionError as never:
            raise AssertionError(f"Prometheus answers {found}, not {expected}") from never
        return found

    def stop(self) -> None:
        stop(self.process)
        self._log.close()
