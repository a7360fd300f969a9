"""Throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, RGW) on loopback, for S3 tests.

A real S3 implementation beside moto, which accepts any credentials and any Content-MD5:
`make test-rgw` runs the S3 tests against it and `make bench S3=rgw` the benchmark's S3 rows.

CLI::

    python -m testing.rgw start --dir FOLDER   # prints endpoint, keys, pids; FOLDER/state.json
    python -m testing.rgw env --dir FOLDER     # shell exports for the tests (S3_TEST_ENDPOINT…)
    python -m testing.rgw stop --dir FOLDER    # RGW, then OSD, then MON; idempotent
    python -m testing.rgw status --dir FOLDER  # which daemons of FOLDER are alive

API::

    from testing.rgw import running
    with running(tmp_path / "ceph") as s3:
        boto3.client("s3", endpoint_url=s3["endpoint_url"], ...)

Everything lives under FOLDER (nothing in /etc/ceph, /var/lib/ceph, /var/log/ceph or
/var/run/ceph) and there is no systemd: the daemons are children started with -f, found again
through FOLDER/state.json and /proc. Root is not needed.

Needs the Debian 12 packages ceph-mon, ceph-osd and radosgw (Ceph 16.2); it shells out to
monmaptool, ceph-mon, ceph, ceph-osd, radosgw and radosgw-admin.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from testing.servers import S3Endpoint

ACCESS_KEY = "labdropbox-test"
SECRET_KEY = "labdropbox-test-secret-key-not-for-production"
USER_ID = "labdropbox-test"

MON_ID = "a"
OSD_ID = "0"
RGW_NAME = "client.rgw.labdropbox"
# Stop order matters: RGW ignores SIGTERM once its OSD is gone, and the OSD waits
# osd_mon_shutdown_timeout (5 s) on SIGTERM when its monitor is gone.
DAEMONS = ("rgw", "osd", "mon")
DAEMON_BINARIES = {"mon": "ceph-mon", "osd": "ceph-osd", "rgw": "radosgw"}
DAEMON_NAMES = {"mon": f"mon.{MON_ID}", "osd": f"osd.{OSD_ID}", "rgw": RGW_NAME}

# What start() creates, so that a restart in the same folder removes only its own leftovers.
CREATED = (
    "ceph.conf",
    "monmap",
    "state.json",
    "state.tmp",
    "mon",
    "osd",
    "rgw",
    "log",
    "run",
    "crash",
)

# Popen objects of the daemons this process started: poll() reaps them once they exit, and
# holding them avoids the "subprocess is still running" ResourceWarning under pytest.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

POLL = 0.05  # seconds between checks of a condition; never used as a correctness delay


class RgwError(RuntimeError):
    """Starting or stopping the throwaway cluster failed; the message carries log tails."""


# --------------------------------------------------------------------------------------------
# small helpers


def _log(msg: str) -> None:
    print(f"[rgw.py] {msg}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path})"
    return f"--- last {min(lines, len(text))} lines of {path} ---\n" + "\n".join(text[-lines:])


def _last(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    logs: list[Path],
    watch: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `check` until it is true; fail fast if `watch` exits, clearly on timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if watch is not None and watch.poll() is not None:
            tails = "\n".join(_tail(p) for p in logs)
            raise RgwError(f"{what}: process exited with {watch.returncode}\n{tails}")
        if time.monotonic() > deadline:
            tails = "\n".join(_tail(p) for p in logs)
            raise RgwError(f"{what}: not done after {timeout:.0f} s\n{tails}")
        time.sleep(POLL)


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open together so the kernel hands out distinct ports.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _check_port_free(port: int) -> None:
    # A plain bind (no SO_REUSEADDR) fails on any listener, e.g. a stale daemon of an earlier run,
    # so we fail now with a clear message instead of the daemon retrying its bind for a while.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise RgwError(f"port 127.0.0.1:{port} is already in use ({e})") from e


def _asok(path: Path, prefix: str) -> dict[str, Any] | None:
    """One admin-socket command (the protocol of ceph_daemon.admin_socket), or None if not up."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(path))
            s.sendall(json.dumps({"prefix": prefix, "format": "json"}).encode() + b"\0")
            head = s.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                return None
            (size,) = struct.unpack(">I", head)
            body = b""
            while len(body) < size:
                chunk = s.recv(size - len(body))
                if not chunk:
                    return None
                body += chunk
        reply = json.loads(body)
    except (OSError, ValueError):
        return None
    return reply if isinstance(reply, dict) else None


def _asok_says(path: Path, prefix: str, key: str, value: str) -> bool:
    return (_asok(path, prefix) or {}).get(key) == value


def _http_answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
        finally:
            conn.close()
        return True
    except (OSError, http.client.HTTPException):
        return False


def _env() -> dict[str, str]:
    # CEPH_ARGS/CEPH_CONF from the caller's shell would silently change which cluster we talk to.
    env = {k: v for k, v in os.environ.items() if k not in ("CEPH_ARGS", "CEPH_CONF")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def _run(argv: list[str], timeout: float, what: str, logs: list[Path] | None = None) -> str:
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        tails = "\n".join(_tail(p) for p in logs or [])
        cmd = " ".join(argv)
        raise RgwError(f"{what}: `{cmd}` timed out after {timeout:.0f} s\n{tails}") from e
    if proc.returncode != 0:
        tails = "\n".join(_tail(p) for p in logs or [])
        raise RgwError(
            f"{what}: `{' '.join(argv)}` exited {proc.returncode}\n"
            f"stdout: {_last(proc.stdout)}\nstderr: {_last(proc.stderr)}\n{tails}"
        )
    return proc.stdout


# --------------------------------------------------------------------------------------------
# /proc: is a pid alive, and is it one of ours?


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a pid, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses; the fields after the last ')' do not.
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


def _proc_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    # A daemon this process started is reaped through its Popen (in-process use from pytest);
    # any other pid is only looked at, and a zombie that nobody reaps counts as exited.
    proc = _CHILDREN.get(pid)
    if proc is not None:
        return proc.poll() is None
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def _is_ours(pid: int, conf: Path, starttime: int | None) -> str | None:
    """None if pid is a daemon of this folder's cluster, else the reason it is not."""
    stat = _proc_stat(pid)
    if stat is None:
        return "no such process"
    argv = _proc_cmdline(pid)
    if str(conf) not in argv:
        return f"its command line does not reference {conf}: {' '.join(argv).strip()!r}"
    if starttime is not None and stat[1] != starttime:
        return "it started at another time than the recorded daemon (pid reused)"
    return None


def _find_daemons(conf: Path) -> dict[int, str]:
    """Every live ceph daemon whose command line references `conf` (pid -> binary)."""
    found: dict[int, str] = {}
    binaries = set(DAEMON_BINARIES.values())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _proc_cmdline(int(entry.name))
        if argv and Path(argv[0]).name in binaries and str(conf) in argv:
            found[int(entry.name)] = Path(argv[0]).name
    return found


# --------------------------------------------------------------------------------------------
# configuration


def _ceph_conf(folder: Path, fsid: str, mon_v2: int, mon_v1: int, rgw_port: int, mem: int) -> str:
    logs = folder / "log"
    return f"""\
# Generated by rgw.py for a throwaway test cluster; everything lives under {folder}.
[global]
fsid = {fsid}
mon_host = [v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
# No cephx: nothing to keep secret on loopback, and no keyrings to create.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Keep every path inside the folder so concurrent clusters and the system one never collide.
run_dir = {folder}/run
crash_dir = {folder}/crash
log_file = {logs}/$name.log
mon_cluster_log_file = default={logs}/$cluster.$channel.log cluster={logs}/$cluster.log
mon_data = {folder}/mon/$cluster-$id
osd_data = {folder}/osd/$cluster-$id
rgw_data = {folder}/rgw/$cluster-$id
keyring = {folder}/keyring
# One OSD: pools of size 1, few PGs, no autoscaler (there is no mgr to run it anyway).
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
# A hung client should fail within a test run, not after the default 300 s.
client_mount_timeout = 30
rados_mon_op_timeout = 30
rados_osd_op_timeout = 60

[mon]
# Each pool RGW creates is one Paxos round; the default 1 s interval makes start take ~12 s.
paxos_propose_interval = 0.05
# The monitor shuts itself down below 5% free disk; a test cluster should not care.
mon_data_avail_crit = 1
mon_data_avail_warn = 2

[osd]
osd_objectstore = memstore
memstore_device_bytes = {mem}

[{RGW_NAME}]
# tcp_nodelay: without it a small object's answer waits ~40 ms for the client's delayed ACK
# (Nagle's algorithm holds the body back behind the headers).
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
# RGW alone (not the ceph CLI) fails to authenticate to a cephx-less monitor in the default
# "secure crc" mode: it logs "get_initial_auth_request returned -13" every 3 s until
# rgw_init_timeout. auth_client_required = none here as well is not needed (tried).
ms_mon_client_mode = crc
rgw_init_timeout = 60
# Pacific gives every bucket 11 index shards, i.e. 11 RADOS objects held in the OSD's memory
# (~20 KiB each); test buckets hold a handful of keys, so one shard is plenty.
rgw_override_bucket_index_max_shards = 1
"""


# --------------------------------------------------------------------------------------------
# state file


def _paths(folder: Path) -> dict[str, Path]:
    return {
        "conf": folder / "ceph.conf",
        "state": folder / "state.json",
        "log": folder / "log",
        "run": folder / "run",
    }


def _read_state(folder: Path) -> dict[str, Any] | None:
    path = _paths(folder)["state"]
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise RgwError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(state, dict):
        raise RgwError(f"{path} does not hold a JSON object")
    return state


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    path = _paths(folder)["state"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# start


def _spawn(
    kind: str, argv: list[str], folder: Path, state: dict[str, Any]
) -> subprocess.Popen[bytes]:
    """Start a daemon in the foreground (-f) as our child and record it before anything waits."""
    out = folder / "log" / f"{DAEMON_NAMES[kind]}.stdout"
    with out.open("ab") as fh:
        # Own session: a Ctrl-C in the caller's terminal must not half-kill the cluster;
        # stop() takes it down in the right order.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_env(),
        )
    stat = _proc_stat(proc.pid)
    state["daemons"][kind] = {
        "pid": proc.pid,
        "starttime": stat[1] if stat else None,
        "log": str(folder / "log" / f"{DAEMON_NAMES[kind]}.log"),
    }
    _write_state(folder, state)
    _CHILDREN[proc.pid] = proc
    return proc


def _prepare_folder(folder: Path) -> None:
    try:
        recorded = status(folder)
    except RgwError:  # an unreadable state file; the /proc scan below still finds daemons
        recorded = {}
    if "running" in recorded.values() or _find_daemons(_paths(folder)["conf"]):
        raise RgwError(f"a cluster is still running in {folder}; run `stop --dir {folder}` first")
    for name in CREATED:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def start(
    folder: Path,
    *,
    memstore_bytes: int = 1 << 30,
    timeout: float = 120.0,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
) -> dict[str, Any]:
    """Create and start a fresh cluster in `folder`; return (and write) its state.

    `memstore_bytes` is the OSD's capacity, held in RAM as objects are written.
    `timeout` bounds each phase (mon up, OSD up, RGW answering), not the sum.
    On failure every daemon already started is stopped and RgwError carries the log tails.
    """
    t0 = time.monotonic()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _prepare_folder(folder)
    p = _paths(folder)
    # ceph-osd --mkfs does not create its data directory; ceph-mon --mkfs does.
    for sub in ("log", "run", "crash", "mon", f"osd/ceph-{OSD_ID}", "rgw"):
        (folder / sub).mkdir(parents=True)

    mon_v2, mon_v1, rgw_port = _free_ports(3)
    fsid = str(uuid.uuid4())
    p["conf"].write_text(_ceph_conf(folder, fsid, mon_v2, mon_v1, rgw_port, memstore_bytes))
    conf = str(p["conf"])
    state: dict[str, Any] = {
        "status": "starting",
        "folder": str(folder),
        "conf": conf,
        "fsid": fsid,
        "mon_ports": {"v2": mon_v2, "v1": mon_v1},
        "rgw_port": rgw_port,
        "endpoint": f"127.0.0.1:{rgw_port}",
        "endpoint_url": f"http://127.0.0.1:{rgw_port}",
        "user_id": USER_ID,
        "access_key": access_key,
        "secret_key": secret_key,
        "region": "us-east-1",
        "daemons": {},
        "timings": {},
    }
    _write_state(folder, state)
    timings: dict[str, float] = state["timings"]

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - t0, 3)

    try:
        # --- monitor
        mon_log = folder / "log" / f"mon.{MON_ID}.log"
        monmap = str(folder / "monmap")
        _run(
            [
                "monmaptool",
                "--create",
                "--fsid",
                fsid,
                "--addv",
                MON_ID,
                f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]",
                monmap,
            ],
            30,
            "monmaptool",
        )
        _run(
            ["ceph-mon", "-c", conf, "-i", MON_ID, "--mkfs", "--monmap", monmap],
            60,
            "ceph-mon --mkfs",
            [mon_log],
        )
        for port in (mon_v2, mon_v1):
            _check_port_free(port)
        mon = _spawn("mon", ["ceph-mon", "-f", "-c", conf, "-i", MON_ID], folder, state)
        mon_asok = p["run"] / f"ceph-mon.{MON_ID}.asok"
        mon_logs = [mon_log, folder / "log" / f"mon.{MON_ID}.stdout"]
        _wait_for(
            "monitor to become leader",
            lambda: _asok_says(mon_asok, "mon_status", "state", "leader"),
            timeout,
            mon_logs,
            mon,
        )
        lap("mon_leader")

        # --- OSD: register it with the monitor, then format its (in-memory) store
        osd_uuid = str(uuid.uuid4())
        osd_id = _run(
            ["ceph", "-c", conf, "--connect-timeout", "30", "osd", "new", osd_uuid],
            timeout,
            "ceph osd new",
            mon_logs,
        ).strip()
        if osd_id != OSD_ID:
            raise RgwError(f"expected the first OSD to get id {OSD_ID}, got {osd_id!r}")
        osd_log = folder / "log" / f"osd.{OSD_ID}.log"
        osd_logs = [osd_log, folder / "log" / f"osd.{OSD_ID}.stdout"]
        _run(
            ["ceph-osd", "-c", conf, "-i", OSD_ID, "--mkfs", "--osd-uuid", osd_uuid],
            timeout,
            "ceph-osd --mkfs",
            osd_logs,
        )
        osd = _spawn("osd", ["ceph-osd", "-f", "-c", conf, "-i", OSD_ID], folder, state)
        osd_asok = p["run"] / f"ceph-osd.{OSD_ID}.asok"
        _wait_for(
            "OSD to become active",
            lambda: _asok_says(osd_asok, "status", "state", "active"),
            timeout,
            osd_logs,
            osd,
        )
        lap("osd_active")

        # --- RGW: it creates its pools itself, then opens the HTTP port
        rgw_logs = [folder / "log" / f"{RGW_NAME}.log", folder / "log" / f"{RGW_NAME}.stdout"]
        _check_port_free(rgw_port)
        rgw = _spawn("rgw", ["radosgw", "-f", "-c", conf, "-n", RGW_NAME], folder, state)
        _wait_for(
            f"RGW to answer HTTP on 127.0.0.1:{rgw_port}",
            lambda: _http_answers(rgw_port),
            timeout,
            rgw_logs,
            rgw,
        )
        lap("rgw_http")

        # --- S3 user; --max-buckets=0 lifts the default limit of 1,000 buckets per user
        _run(
            [
                "radosgw-admin",
                "-c",
                conf,
                "user",
                "create",
                f"--uid={USER_ID}",
                "--display-name=LabDropbox tests",
                f"--access-key={access_key}",
                f"--secret={secret_key}",
                "--max-buckets=0",
            ],
            timeout,
            "radosgw-admin user create",
            rgw_logs,
        )
        lap("user_created")
    except BaseException:
        # Also on KeyboardInterrupt: never leave half a cluster behind.
        state["status"] = "failed"
        _write_state(folder, state)
        with contextlib.suppress(Exception):
            stop(folder, quiet=True)
        raise

    state["status"] = "running"
    state["pids"] = {k: v["pid"] for k, v in state["daemons"].items()}
    _write_state(folder, state)
    return state


# --------------------------------------------------------------------------------------------
# stop


def _terminate(pid: int, name: str, timeout: float, quiet: bool, graceful: bool = True) -> bool:
    """SIGTERM, wait up to `timeout`, then SIGKILL and wait again. True if it is gone."""
    steps = [(signal.SIGTERM, timeout)] if graceful else []
    for sig, bound in [*steps, (signal.SIGKILL, 10.0)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if not _alive(pid):
                _CHILDREN.pop(pid, None)
                return True
            time.sleep(POLL)
        if sig == signal.SIGTERM and not quiet:
            _log(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
    return False


def stop(folder: Path, *, timeout: float = 20.0, quiet: bool = False) -> None:
    """Stop the cluster of `folder`: RGW, then OSD, then MON. Idempotent.

    Only processes whose /proc/PID/cmdline references FOLDER/ceph.conf (and, when recorded,
    whose start time matches) are signalled; any other pid in the state file is left alone.
    Daemons of this folder missing from the state file (lost, faked) are found in /proc.
    Raises RgwError if one of our daemons survives SIGKILL.
    """
    folder = Path(folder).resolve()
    conf = _paths(folder)["conf"]
    state = _read_state(folder) or {}
    recorded: dict[str, Any] = state.get("daemons", {})
    found = _find_daemons(conf)
    targets: dict[str, list[int]] = {kind: [] for kind in DAEMONS}
    for kind in DAEMONS:
        info = recorded.get(kind)
        if info:
            pid = int(info["pid"])
            reason = _is_ours(pid, conf, info.get("starttime")) if _alive(pid) else "exited"
            if reason is None:
                targets[kind].append(pid)
            elif reason == "exited":
                if not quiet:
                    _log(f"{DAEMON_NAMES[kind]} (pid {pid}) is not running")
            else:
                _log(f"refusing to signal pid {pid} recorded as {DAEMON_NAMES[kind]}: {reason}")
        for pid, binary in sorted(found.items()):
            if binary == DAEMON_BINARIES[kind] and pid not in targets[kind]:
                if not quiet:
                    _log(f"found unrecorded {binary} (pid {pid}) of {conf}")
                targets[kind].append(pid)

    # RGW ignores SIGTERM once its OSD is gone, and the OSD waits osd_mon_shutdown_timeout (5 s)
    # for a monitor that is gone: the data is throwaway, so kill those outright.
    needs = {"rgw": "osd", "osd": "mon"}
    survivors: list[str] = []
    for kind in DAEMONS:
        helper = needs.get(kind)
        graceful = helper is None or any(_alive(pid) for pid in targets[helper])
        for pid in targets[kind]:
            name = DAEMON_NAMES[kind]
            if not quiet:
                how = "" if graceful else f" with SIGKILL: its {helper} is gone"
                _log(f"stopping {name} (pid {pid}){how}")
            if not _terminate(pid, name, timeout, quiet, graceful):
                survivors.append(f"{name} (pid {pid})")
    if state:
        state["status"] = "stopped" if not survivors else "stop-failed"
        _write_state(folder, state)
    if survivors:
        raise RgwError(f"still alive after SIGKILL: {', '.join(survivors)}")


def status(folder: Path) -> dict[str, str]:
    """kind -> 'running' / 'exited' / 'foreign' (pid alive but not ours) for the state file."""
    folder = Path(folder).resolve()
    conf = _paths(folder)["conf"]
    out: dict[str, str] = {}
    for kind, info in ((_read_state(folder) or {}).get("daemons") or {}).items():
        pid = int(info["pid"])
        if not _alive(pid):
            out[kind] = "exited"
        elif _is_ours(pid, conf, info.get("starttime")) is None:
            out[kind] = "running"
        else:
            out[kind] = "foreign"
    return out


class RgwServer(S3Endpoint):
    """A cluster started in `folder`, as an S3 endpoint for the benchmark: stop() takes it
    down."""

    kind = "rgw"

    def __init__(self, folder: Path, memstore_bytes: int = 4 << 30) -> None:
        self.folder = folder
        state = start(folder, memstore_bytes=memstore_bytes)
        self.endpoint = state["endpoint"]
        self.access_key = state["access_key"]
        self.secret_key = state["secret_key"]
        self._pids = list(state["pids"].values())

    @property
    def pids(self) -> list[int]:
        """The monitor, the OSD and the gateway: the OSD stores what the gateway is sent."""
        return self._pids

    def stop(self) -> None:
        stop(self.folder, quiet=True)


@contextlib.contextmanager
def running(folder: Path, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """`with running(path) as s3:` starts a cluster and always stops it afterwards."""
    state = start(folder, **kwargs)
    try:
        yield state
    finally:
        stop(folder, quiet=True)


def shell_exports(folder: Path) -> str:
    """`export` lines that point the test suite (and gunicorn under it) at this cluster."""
    state = _read_state(Path(folder).resolve())
    if not state or state.get("status") != "running":
        raise RgwError(f"no running cluster in {folder}")
    exports = {
        "S3_TEST_ENDPOINT": state["endpoint"],
        "S3_TEST_KIND": "rgw",
        "MINIO_ACCESS_KEY": state["access_key"],
        "MINIO_SECRET_KEY": state["secret_key"],
    }
    return "\n".join(f"export {name}={value}" for name, value in exports.items())


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="create and start a fresh cluster in --dir")
    p_start.add_argument("--dir", type=Path, required=True)
    p_start.add_argument(
        "--memstore-mib",
        type=int,
        default=1024,
        help="OSD capacity in MiB, held in RAM as data is written",
    )
    p_start.add_argument("--timeout", type=float, default=120.0, help="bound of each phase (s)")
    p_start.add_argument("--json", action="store_true", help="print the state as JSON")
    p_stop = sub.add_parser("stop", help="stop the cluster of --dir (RGW, OSD, MON)")
    p_stop.add_argument("--dir", type=Path, required=True)
    p_stop.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds to wait after SIGTERM before SIGKILL, per daemon",
    )
    p_status = sub.add_parser("status", help="show which daemons of --dir are alive")
    p_status.add_argument("--dir", type=Path, required=True)
    p_env = sub.add_parser("env", help="shell exports that point the tests at --dir's RGW")
    p_env.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)

    try:
        if args.cmd == "start":
            t0 = time.monotonic()
            state = start(args.dir, memstore_bytes=args.memstore_mib << 20, timeout=args.timeout)
            if args.json:
                print(json.dumps(state, indent=2))
                return 0
            print(f"endpoint    {state['endpoint']}")
            print(f"access key  {state['access_key']}")
            print(f"secret key  {state['secret_key']}")
            print("pids        " + " ".join(f"{k}={v}" for k, v in state["pids"].items()))
            print(f"state       {Path(state['folder']) / 'state.json'}")
            print(f"started in  {time.monotonic() - t0:.2f} s")
        elif args.cmd == "env":
            print(shell_exports(args.dir))
        elif args.cmd == "stop":
            t0 = time.monotonic()
            stop(args.dir, timeout=args.timeout)
            print(f"stopped in  {time.monotonic() - t0:.2f} s")
        else:
            print(json.dumps(status(args.dir), indent=2))
    except RgwError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
