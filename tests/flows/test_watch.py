"""Keyframe changes re-render their shot: the watcher decides by content, a Prefect trigger starts the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import shot_db
from shot_db import ShotDB
from tasks.watch import SourceIndex

from .conftest import make_shots, redraw, settings_for, versions




def test_changes_are_decided_by_content(tmp_path: Path) -> None:
    shots = make_shots(tmp_path, {"sh0010": {"timing": [2] * 3}, "sh0020": {"timing": [2] * 3}})
    index = SourceIndex([shots.path])
    video = tmp_path / "rough" / "sh0010.mkv"
    os.utime(video, (1, 1))
    assert index.changes([video]) == []  # touched: same bytes
    redraw(shots, "sh0010", 1)
    assert [c.shot.id for c in index.changes([video])] == ["test/sq010/sh0010"]
    assert index.changes([video]) == []  # already seen
    shots.doc["shots"][1]["render"] = {"seed": 3}
    shots.write()
    assert [(c.shot.id, c.path) for c in index.changes([shots.path])] == [("test/sq010/sh0020", shots.path.resolve())]
    assert index.changes([tmp_path / "unrelated.txt"]) == []




@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[callable]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        toonfarm = Path(sys.executable).with_name("toonfarm")
        out = open(tmp_path / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(toonfarm), *args], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def _wait(what: str, check: callable, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.mark.slow
@pytest.mark.usefixtures("ray_module")
def test_keyframe_change_triggers_a_rerender_of_that_shot(tmp_path: Path, prefect_server: str, spawn) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2] * 4}, "sh0020": {"timing": [2] * 4}})
    settings = settings_for(tmp_path)
    first = render_batch(str(shots.path), settings)
    assert first.summary == "rendered 6 pairs, reused 0, failed 0"

    env = {**os.environ, "PREFECT_API_URL": prefect_server, "TOONFARM_OUTPUT_ROOT": str(settings.output_root),
           "TOONFARM_ACTORS": "1"}
    logs = [tmp_path / "serve.log", tmp_path / "watch.log"]
    spawn("serve", str(shots.path), env=env, log="serve.log")

    def deployed() -> bool:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name("rerender-shot/on-keyframe-change")
            except Exception:
                return False
            return any(a.name.startswith("on-keyframe-change") for a in client.read_automations())

    _wait("the deployments to be served", deployed, 120, logs)
    spawn("watch", str(shots.path), env=env, log="watch.log")
    _wait("the watcher", lambda: "watching" in logs[1].read_text(), 60, logs)

    os.utime(tmp_path / "in" / "rough" / "sh0020.mkv")  # touched, not changed: no event, no run
    redraw(shots, "sh0010", 1)
    _wait("version 2 of sh0010", lambda: versions(settings, "sh0010") == [1, 2], 240, logs)
    assert versions(settings, "sh0020") == [1]
    assert logs[1].read_text().count("changed: ") == 1
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    rerenders = [r for r in runs if r.parameters.get("shot") == "test/sq010/sh0010"]
    assert len(rerenders) == 1
    (rerun,) = rerenders  # named after the shot, tagged, and holding its own task runs and artifacts
    assert rerun.name.startswith("sh0010 re-render ") and {"trigger:keyframe-change", "sequence:sq010"} <= set(rerun.tags)
    with get_client(sync_client=True) as client:
        own = FlowRunFilter(id=FlowRunFilterId(any_=[rerun.id]))
        task_names = {t.name for t in client.read_task_runs(flow_run_filter=own)}
        keys = {a.key for a in client.read_artifacts() if a.flow_run_id == rerun.id}
    assert "publish test/sq010/sh0010" in task_names and "detect test/sq010/sh0010" in task_names
    assert {"shots-test-sq010", "progress-test-sq010"} <= keys
    db = ShotDB.open(settings.db_url)
    with db.transaction() as s:
        _, v2 = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
    db.close()
    # only the two pairs that touch the redrawn keyframe were rendered again, by the triggered run
    again = {(r.frame_a, r.frame_b) for r in v2.renders if r.flow_run_id != first.flow_run_id}
    assert again == {(0, 2), (2, 4)}
