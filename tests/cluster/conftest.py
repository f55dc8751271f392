"""Helpers for the farm tests: keyframes and jobs in the test's own folder, one local Ray per module,
and a look at which addresses Ray's processes listen on."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cluster.connect import RayCluster, connect
from cluster.jobs import PairJob, PairResult
from tooncrafter_model.frames import write_frame

TIMES = (0.25, 0.5, 0.75)


@contextmanager
def _local_ray(**kwargs: Any) -> Iterator[tuple[RayCluster, str]]:
    # Session files go to a short unique folder (unix socket paths are limited to ~107 characters,
    # too few under pytest's tmp_path), removed afterwards.
    temp_dir = tempfile.mkdtemp(prefix="tfr-", dir="/tmp")
    try:
        with connect(temp_dir=temp_dir, **kwargs) as cluster:
            yield cluster, temp_dir
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_local() -> Iterator[tuple[RayCluster, str]]:
    """One local Ray per test module (starting one costs 3-7 s): 2 CPUs, no GPU."""
    with _local_ray(num_cpus=2) as started:
        yield started


@pytest.fixture(scope="module")
def ray_fake_gpus() -> Iterator[tuple[RayCluster, str]]:
    """A local Ray declaring 2 fake GPUs and 24 GB of VRAM as a custom resource (bookkeeping only)."""
    with _local_ray(num_cpus=2, num_gpus=2, resources={"vram_gb": 24}) as started:
        yield started


def keyframes(folder: Path, size: tuple[int, int] = (24, 32)) -> tuple[str, str]:
    """Two clearly different keyframes: a dark frame and a bright one with a square moved across."""
    h, w = size
    a = np.full((h, w, 3), 30, np.uint8)
    b = np.full((h, w, 3), 220, np.uint8)
    a[4:12, 4:12] = (255, 0, 0)
    b[8:16, 16:24] = (0, 0, 255)
    folder.mkdir(parents=True, exist_ok=True)
    return str(write_frame(folder / "a.png", a)), str(write_frame(folder / "b.png", b))


JobMaker = Callable[..., PairJob]


@pytest.fixture
def make_job(tmp_path: Path) -> JobMaker:
    """Build a PairJob over two keyframes in tmp_path, rendering into tmp_path/renders/<key>."""
    frame_a, frame_b = keyframes(tmp_path / "keys")

    def make(key: str, *, shot: str = "show/sq010/sh010", **fields: Any) -> PairJob:
        fields.setdefault("times", TIMES)
        fields.setdefault("frame_a", frame_a)
        fields.setdefault("frame_b", frame_b)
        fields.setdefault("out_dir", str(tmp_path / "renders" / key))
        return PairJob(render_key=key, shot=shot, **fields)

    return make


def _assert_published(results: list[PairResult], renders: Path) -> None:
    ok = {Path(r.job.out_dir).name for r in results if r.ok}
    listing = sorted(os.listdir(renders)) if renders.exists() else []
    assert listing == sorted(ok), f"unexpected entries in {renders}: {listing}"
    for r in results:
        if r.ok:
            names = [f"{i:04d}.png" for i in range(1, len(r.job.times) + 1)]
            assert sorted(os.listdir(r.job.out_dir)) == names
            assert [Path(p).name for p in r.frame_paths] == names


@pytest.fixture
def assert_published() -> Callable[[list[PairResult], Path], None]:
    """Check that every ok pair has exactly its frames in place, failed pairs left nothing behind and
    no staging folder is visible in the renders folder."""
    return _assert_published


def _descendants(roots: set[int]) -> set[int]:
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, grew = set(roots), True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _ray_pids(marker: str) -> set[int]:
    """Processes whose command line mentions `marker` (a session's temp folder), and their children."""
    roots = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        roots.add(int(entry))
            except OSError:
                continue
    return _descendants(roots)


def _listening(marker: str) -> list[tuple[str, int, str, bool]]:
    pids = _ray_pids(marker) | _descendants({os.getpid()})  # the driver is this test process
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        cols = line.split()
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
            if int(pid) in pids:
                found.append((cols[3], int(pid), name, _is_loopback(cols[3])))
    return found


@pytest.fixture
def ray_listeners() -> Callable[[str], list[tuple[str, int, str, bool]]]:
    """(local address, pid, process name, is loopback) of every TCP socket listened on by this test
    process, the processes whose command line mentions `marker` (a Ray session's temp folder) and
    all their children."""
    return _listening


def _is_loopback(local: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback, as `ss` prints local addresses."""
    host = local.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:")
    return host.startswith("127.") or host == "::1"


# ----------------------------------------------------------------------------- a two-node cluster

# `ray start --address` refuses to add a node while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, the very switch
# that keeps Ray's servers on loopback (with it on, 127.0.0.1 is rewritten to the machine's network
# address). Lift the refusal for the CLI module alone, so the second node still binds 127.0.0.1 only.
_WORKER_NODE_CLI = """
import sys, types
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts
cli_view = types.ModuleType(constants.__name__)
cli_view.__dict__.update(constants.__dict__)
cli_view.ENABLE_RAY_CLUSTER = True
scripts.ray_constants = cli_view
sys.argv = ["ray", "start", *sys.argv[1:]]
sys.exit(scripts.main())
"""


@dataclass(frozen=True)
class TwoNodeRay:
    """A real two-node Ray cluster on this machine, both nodes on 127.0.0.1."""

    address: str
    temp_dir: str  # session files of both nodes; also how their processes are found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _session_of(pid: int) -> tuple[int, str]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[3]), fields[0]


def _stop(sessions: list[int], temp_dir: str) -> None:
    """Stop exactly the processes this fixture started: its `ray start` sessions and anything that
    names its temp folder, never another engineer's Ray (no `ray stop`, which stops every Ray here)."""

    def ours() -> set[int]:
        pids = set(_ray_pids(temp_dir))
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    sid, state = _session_of(int(entry))
                except (OSError, ValueError, IndexError):
                    continue
                if sid in sessions and state != "Z":
                    pids.add(int(entry))
        return pids - {os.getpid()}

    # gcs_server and the agents can take 10 s+ over a SIGTERM; a test cluster needs no graceful exit.
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        for pid in ours():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while ours() and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def two_node_ray() -> Iterator[TwoNodeRay]:
    """`ray start --head` (resource node_a) plus a second `ray start --address` node (node_b), one CPU
    each, in a unique temp folder; stopped by process id afterwards. Extend it for other farm tests."""
    temp_dir = tempfile.mkdtemp(prefix="tfr-mn-", dir="/tmp")
    port = _free_port()
    env = dict(
        os.environ,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        AUTOSCALER_METRIC_PORT=str(_free_port()),  # defaults are fixed ports other Rays here may hold
        DASHBOARD_METRIC_PORT=str(_free_port()),
    )
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false",
            f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
            '--resources={"node_a": 1}', *common]
    worker = [sys.executable, "-c", _WORKER_NODE_CLI, f"--address=127.0.0.1:{port}",
              f"--dashboard-agent-listen-port={_free_port()}", '--resources={"node_b": 1}', *common]
    sessions: list[int] = []
    try:
        for cmd in (head, worker):
            proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            sessions.append(proc.pid)
            out, _ = proc.communicate(timeout=180)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{out[-3000:]}")
        yield TwoNodeRay(address=f"127.0.0.1:{port}", temp_dir=temp_dir)
    finally:
        _stop(sessions, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
