"""`manage.py cleanup --grace-minutes 0`, over and over, as fast as it runs, beside a service:
the collector racing whatever the service is doing. One process runs the command in a loop (a
start-up costs a second; a run, milliseconds), so a race gets thousands of chances, not a few.

    with Collector(service) as collector:   # service: a testing.servers.GunicornServer
        ...                                  # requests race the collector
        collector.wait_for_runs(3)           # three whole runs since now

Run as `python -m testing.collector STATE_DIR` with the service's environment: it counts its
runs into STATE_DIR/runs and stops at the end of the run during which STATE_DIR/stop appears.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from testing.conditions import eventually
from testing.servers import PROJECT_DIR


class Collector:
    def __init__(self, service: Any) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="collector-"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testing.collector", str(self.state)],
            cwd=PROJECT_DIR,
            env=service.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.wait_for_runs(1)

    @property
    def runs(self) -> int:
        text = (self.state / "runs").read_text() if (self.state / "runs").exists() else ""
        return int(text or 0)

    def wait_for_runs(self, count: int) -> None:
        """Return once `count` whole runs have started and ended since the call."""
        target = self.runs + count + 1  # the run under way may have looked before the call
        eventually(lambda: self.runs >= target or self.process.poll() is not None, timeout=120)
        assert self.process.poll() is None, self.process.communicate()[1]

    def stop(self) -> int:
        """Stop after the run under way; how many runs there were."""
        (self.state / "stop").touch()
        _, errors = self.process.communicate(timeout=120)
        assert self.process.returncode == 0, errors
        return self.runs

    def __enter__(self) -> Collector:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.stop()


def collect_until_stopped(state: Path) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    runs = 0
    while not (state / "stop").exists():
        call_command("cleanup", "--grace-minutes", "0", stdout=io.StringIO())
        runs += 1
        (state / "runs.new").write_text(str(runs))
        (state / "runs.new").replace(state / "runs")


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labdropbox.settings")
    collect_until_stopped(Path(sys.argv[1]))
