"""The tree's costs, each as how it grows with the work: a page deep in a folder of a million
entries ÷ its first page (keyset paging: the same), a copy of a big file ÷ of a 1 KiB one (no
chunk touched: the same), moving a folder of 10,000 files ÷ a folder of one (one row: the same,
on MariaDB), and small PUTs into a path ÷ into the root by name (finding the folders is cheap).

The big folders are filled by the service's own models in bulk (`manage.py shell`), not through
the API: a million uploads would take hours and measure uploads, not listing or moving."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator

from bench.harness import MIB, SMOKE, Harness, medians_interleaved, repeated, stack_configured
from testing.mysql import recreate_mysql_database
from testing.servers import GunicornServer
from testing.uploads import send

FIGURES = [
    "folder_deep_page_vs_first",
    "copy_big_vs_small",
    "move_folder_10k_vs_1",
    "path_put_vs_name_put",
]
# Entries of the big folder, and files of the moved one (the smoke run: far fewer).
FOLDER_ENTRIES = {True: 2_000, False: 1_000_000}
MOVED_FILES = {True: 200, False: 10_000}
PAGE = 100

FILL = """
from files.models import Entry
from files.names import name_key, sort_name
parent = Entry.objects.get(pk="{folder}")
batch = []
for n in range({count}):
    name = f"f{{n:07d}}.bin"
    batch.append(Entry(kind=Entry.Kind.FILE, owner_id=None, parent=parent, name=name,
                       name_key=name_key(name), sort_name=sort_name(name), size=n))
    if len(batch) == 5000 or n == {count} - 1:
        Entry.objects.bulk_create(batch)
        batch = []
"""


def measure_tree(harness: Harness) -> None:
    smoke = harness.plan == SMOKE
    figures, raw = harness.results.figures, harness.results.raw
    with harness.service("tree") as server:
        copies = copy_seconds(server, harness)
        puts = put_seconds(server, harness)
    figures["copy_big_vs_small"] = copies["big"] / copies["small"]
    figures["path_put_vs_name_put"] = puts["name"] / puts["path"]
    raw["tree"] = {"copy_seconds": copies, "put_seconds_per_100": puts}
    missing = stack_configured()
    stack = {} if missing else mariadb_settings()
    with harness.service("tree-db", **stack) as server:
        pages = page_seconds(server, harness, FOLDER_ENTRIES[smoke])
        raw["tree"]["page_seconds"] = {**pages, "database": "MariaDB" if stack else "SQLite"}
        figures["folder_deep_page_vs_first"] = pages["deep"] / pages["first"]
        if missing:
            note = f"{' and '.join(missing)} not set (make bench sets them)"
            harness.results.notes["move_folder_10k_vs_1"] = note
            return
        moves = move_seconds(server, harness, MOVED_FILES[smoke])
    raw["tree"]["move_seconds"] = moves
    figures["move_folder_10k_vs_1"] = moves["many"] / moves["one"]


def mariadb_settings() -> dict[str, str]:
    return {
        "TIDB_HOST": os.environ["TIDB_HOST"],
        "REDIS_HOST": os.environ["REDIS_HOST"],
        "TIDB_DATABASE": recreate_mysql_database(os.environ, f"bench_tree_{os.getpid()}"),
    }


def call(server: GunicornServer, method: str, path: str, body: object = None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    reply = send(server, method, path, data, headers)
    if reply.status not in (200, 201):
        raise RuntimeError(f"{method} {path}: {reply.status} {reply.body[:200]!r}")
    return json.loads(reply.body)


def timed(action: Callable[[], object], times: int) -> float:
    """Seconds for one `action`, the median of `times`."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return sorted(samples)[len(samples) // 2]


def filled_folder(server: GunicornServer, path: str, count: int) -> str:
    """A folder at `path` holding `count` files (rows only: nothing is read from them)."""
    folder_id = call(server, "POST", "/folders", {"path": path})["folder_id"]
    server.manage("shell", "-c", FILL.format(folder=folder_id, count=count))
    return folder_id


def page_seconds(server: GunicornServer, harness: Harness, entries: int) -> dict[str, float]:
    """The first page of a folder of `entries`, and its last whole page (its cursor is made from
    the entry it follows, as the listing makes its own)."""
    filled_folder(server, "/big", entries)
    deep_at = entries - PAGE - 1
    deep_name = f"f{deep_at:07d}.bin"
    listing = call(server, "GET", f"/files?path=/big&limit=1&cursor={cursor_before(deep_name)}")
    cursor = listing["next_cursor"]
    url = f"/files?path=/big&limit={PAGE}"
    first, deep = medians_interleaved(
        harness.plan.repeats,
        lambda: timed(lambda: call(server, "GET", url), 20),
        lambda: timed(lambda: call(server, "GET", f"{url}&cursor={cursor}"), 20),
    )
    page = call(server, "GET", f"{url}&cursor={cursor}")["entries"]
    if page[0]["name"] != f"f{deep_at + 1:07d}.bin" or len(page) != PAGE:
        raise RuntimeError(f"the deep page starts at {page[0]['name']}, not after {deep_name}")
    return {"first": first, "deep": deep, "entries": entries}


def cursor_before(name: str) -> str:
    """A cursor that lists from `name` on (it says: after a name just before it)."""
    raw = json.dumps([1, name[:-1], "00000000-0000-0000-0000-000000000000"]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def copy_seconds(server: GunicornServer, harness: Harness) -> dict[str, float]:
    big_size = harness.plan.rss_file
    big = upload_to(server, "/copies/big.bin", repeated(big_size, os.urandom(MIB)), big_size)
    small = upload_to(server, "/copies/small.bin", [os.urandom(1024)], 1024)
    counter = iter(range(10**9))

    def copy(file_id: str) -> None:
        call(server, "POST", f"/files/{file_id}/copy", {"path": f"/copies/c{next(counter)}"})

    big_seconds, small_seconds = medians_interleaved(
        harness.plan.repeats,
        lambda: timed(lambda: copy(big), 20),
        lambda: timed(lambda: copy(small), 20),
    )
    return {"big": big_seconds, "small": small_seconds, "big_bytes": big_size}


def upload_to(server: GunicornServer, path: str, body: Iterable[bytes], length: int) -> str:
    reply = send(server, "PUT", f"/write?path={path}", body, {"Content-Length": str(length)})
    if reply.status != 201:
        raise RuntimeError(f"PUT {path}: {reply.status}")
    return str(json.loads(reply.body)["file_id"])


def put_seconds(server: GunicornServer, harness: Harness) -> dict[str, float]:
    """100 PUTs of 1 KiB each, as new files: into /projects/2026/run/ by path, or by name."""
    kib = os.urandom(1024)
    counter = iter(range(10**9))

    def hundred(target: str) -> None:
        for _ in range(100):
            reply = send(server, "PUT", target.format(next(counter)), kib)
            if reply.status != 201:
                raise RuntimeError(f"PUT: {reply.status}")

    path, name = medians_interleaved(
        harness.plan.repeats,
        lambda: timed(lambda: hundred("/write?path=/projects/2026/run/p{}.bin"), 1),
        lambda: timed(lambda: hundred("/write?name=n{}.bin"), 1),
    )
    return {"path": path, "name": name}


def move_seconds(server: GunicornServer, harness: Harness, files: int) -> dict[str, float]:
    """A folder of `files` files and one of a single file, each moved back and forth."""
    many = filled_folder(server, "/moves/many", files)
    one = filled_folder(server, "/moves/one", 1)

    def mover(folder_id: str, name: str) -> Callable[[], object]:
        places = places_for(name)
        return lambda: call(server, "POST", f"/folders/{folder_id}/move", {"path": next(places)})

    many_seconds, one_seconds = medians_interleaved(
        harness.plan.repeats,
        lambda: timed(mover(many, "many"), 20),
        lambda: timed(mover(one, "one"), 20),
    )
    return {"many": many_seconds, "one": one_seconds, "files": files}


def places_for(name: str) -> Iterator[str]:
    turn = 0
    while True:
        turn += 1
        yield f"/moves/{'left' if turn % 2 else 'right'}/{name}"
