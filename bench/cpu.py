"""CPU time, read from /proc: what the service's processes, the S3 server's and the harness's own
client spend on a measurement, so that a rate can be told apart from what it costs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
GIB = 1024**3


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a gunicorn master and its workers)."""
    tree, index = [pid], 0
    while index < len(tree):
        current = tree[index]
        index += 1
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                tree.extend(int(child) for child in task.read_text().split())
            except OSError:  # the task ended meanwhile
                continue
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their descendants, so far."""
    total = 0
    for pid in {member for root in pids for member in process_tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


@dataclass
class CpuUse:
    """CPU seconds of each side of a measurement, filled in when its block ends."""

    seconds: dict[str, float] = field(default_factory=dict)

    def per_gib(self, side: str, byte_count: int) -> float:
        return self.seconds[side] / (byte_count / GIB)


@contextmanager
def measuring(**sides: list[int]) -> Iterator[CpuUse]:
    """The CPU seconds that each named group of processes spends in the block, and `client`:
    this process's own (the harness's boto3, when it is the client measured)."""
    use = CpuUse()
    started = {name: cpu_seconds(pids) for name, pids in sides.items()}
    own = time.process_time()
    yield use
    use.seconds["client"] = time.process_time() - own
    for name, pids in sides.items():
        use.seconds[name] = cpu_seconds(pids) - started[name]
