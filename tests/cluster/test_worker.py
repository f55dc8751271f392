"""The parts of the farm that need no Ray: config, atomic publication, the worker class run in-process with
its QA, and the simulated GPU backend's faults and defects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cluster.config import PoolConfig, WorkerConfig
from cluster.jobs import PairJob
from cluster.staging import publish, sweep_temp
from cluster.worker import RenderWorker
from tooncrafter_model.backend import load_backend
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import pixel_hash, read_frame
from tooncrafter_model.simulated import SimulatedGPUBackend
from tooncrafter_model.store import complete_frames

MakeJob = Callable[..., PairJob]
A = np.full((6, 8, 3), 40, np.uint8)
B = np.full((6, 8, 3), 200, np.uint8)


def crossfade(t: float) -> np.ndarray:
    return np.clip((1 - t) * A.astype(np.float32) + t * B + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- config


def test_worker_config_is_frozen_hashable_and_normalised() -> None:
    a = WorkerConfig(backend="crossfade", backend_settings={"b": 2, "a": 1}, resources={"vram_gb": 12})
    b = WorkerConfig(backend="crossfade", backend_settings=(("a", 1), ("b", 2)), resources=(("vram_gb", 12),))
    assert a == b and hash(a) == hash(b)
    assert a.backend_settings == (("a", 1), ("b", 2))
    assert a.settings() == {"a": 1, "b": 2}
    assert a.ray_options() == {"num_cpus": 1.0, "num_gpus": 0.0, "resources": {"vram_gb": 12.0}}
    with pytest.raises(AttributeError):
        a.backend = "rife"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: WorkerConfig(num_gpus=-1), "num_gpus"),
        (lambda: WorkerConfig(resources={"vram_gb": "lots"}), "vram_gb"),
        (lambda: PoolConfig(actors=0), "PoolConfig.actors"),
        (lambda: PoolConfig(actors=1, max_attempts=0), "PoolConfig.max_attempts"),
        (lambda: PoolConfig(actors=1, pair_timeout_s=0), "PoolConfig.pair_timeout_s"),
    ],
)
def test_bad_config_names_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


# ----------------------------------------------------------------------------- staging


def test_publish_is_atomic_and_the_existing_render_wins(tmp_path: Path) -> None:
    out = tmp_path / "renders" / "key1"
    paths, kept = publish(out, [crossfade(0.5), crossfade(0.75)])
    assert not kept and [p.name for p in paths] == ["0001.png", "0002.png"]
    assert sorted(os.listdir(out.parent)) == ["key1"]
    first = out.joinpath("0001.png").stat().st_mtime_ns
    paths, kept = publish(out, [np.zeros_like(A), np.zeros_like(A)])
    assert kept and out.joinpath("0001.png").stat().st_mtime_ns == first
    assert pixel_hash(read_frame(paths[0])) == pixel_hash(crossfade(0.5))
    assert sorted(os.listdir(out.parent)) == ["key1"]


def test_publish_replaces_an_incomplete_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "key2"
    out.mkdir()
    (out / "0001.png").write_bytes(b"half a render")
    assert complete_frames(out, 2) is None
    publish(out, [crossfade(0.25), crossfade(0.5)])
    assert complete_frames(out, 2) == [out / "0001.png", out / "0002.png"]
    assert pixel_hash(read_frame(out / "0001.png")) == pixel_hash(crossfade(0.25))
    assert sorted(os.listdir(tmp_path)) == ["key2"]


def test_sweep_removes_only_this_keys_staging(tmp_path: Path) -> None:
    (tmp_path / ".key3.tmp-dead1").mkdir()
    (tmp_path / ".key3.tmp-dead1" / "0001.png").write_bytes(b"x")
    (tmp_path / ".key30.tmp-other").mkdir()
    (tmp_path / "key3").mkdir()
    removed = sweep_temp(tmp_path / "key3")
    assert [p.name for p in removed] == [".key3.tmp-dead1"]
    assert sorted(os.listdir(tmp_path)) == [".key30.tmp-other", "key3"]


# ----------------------------------------------------------------------------- worker without Ray


def test_worker_renders_in_process(tmp_path: Path, make_job: MakeJob) -> None:
    worker = RenderWorker(WorkerConfig(backend="crossfade"))
    info = worker.info()
    assert info.worker == f"local-{os.getpid()}" and info.model_loads == 1 and info.backend == "crossfade"
    job = make_job("k1", times=(0.5, 0.25))
    result = worker.render(job)
    assert result.ok, result.error
    a, b = read_frame(job.frame_a), read_frame(job.frame_b)
    want = [load_backend("crossfade").interpolate(a, b, [t])[0] for t in (0.5, 0.25)]
    assert list(result.frame_hashes) == [pixel_hash(f) for f in want]  # 0001 is t=0.5: the given order
    assert [pixel_hash(read_frame(p)) for p in result.frame_paths] == list(result.frame_hashes)
    (attempt,) = result.attempts
    assert attempt.error is None and attempt.model_loads == 1 and attempt.process == info.process
    assert result.meta["kept_existing"] is False and result.meta["backend"] == "crossfade"
    again = worker.render(job)
    assert again.ok and again.meta == {"kept_existing": True} and again.frame_hashes == result.frame_hashes


def test_worker_reports_bad_input_and_qa_failures_without_writing(tmp_path: Path, make_job: MakeJob) -> None:
    worker = RenderWorker(WorkerConfig(backend="crossfade"))
    missing = make_job("k2", frame_a=str(tmp_path / "nope.png"))
    result = worker.render(missing)
    assert not result.ok and result.error == f"ValueError: {tmp_path / 'nope.png'}: image file not found"
    assert result.attempts[0].error == result.error
    black = RenderWorker(WorkerConfig(backend="simulated-gpu", backend_settings={"seconds": 0, "fault": "black"}))
    result = black.render(make_job("k3"))
    assert not result.ok and result.error.startswith("QAError: frame 0001 (t=0.25): all black")
    assert not Path(make_job("k3").out_dir).exists()
    unchecked = black.render(make_job("k4"), qa=False)
    assert unchecked.ok and "qa" not in unchecked.meta  # QA off publishes whatever came out, unscored
    assert not (tmp_path / "renders").joinpath(".k3").exists()
    assert sorted(os.listdir(tmp_path / "renders")) == ["k4"]


def test_unknown_backend_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        RenderWorker(WorkerConfig(backend="nope"))


def test_worker_returns_every_pairs_quality_scores_and_still_publishes_a_flagged_pair(make_job: MakeJob) -> None:
    clean = RenderWorker(WorkerConfig(backend="simulated-gpu", backend_settings={"seconds": 0}))
    result = clean.render(make_job("q1"))
    assert result.ok and result.meta["qa_s"] > 0
    qa = result.meta["qa"]
    assert qa["problems"] == [] and [f["t"] for f in qa["frames"]] == [0.25, 0.5, 0.75]
    assert set(qa["frames"][0]) == {"index", "t", "tone", "flicker", "ghost", "lines", "vanish", "motion"}
    flash = make_job("q2", params=(("defect", "flicker"), ("defect_strength", 0.5)))
    spoiled = clean.render(flash)
    assert spoiled.ok and Path(spoiled.frame_paths[0]).is_file()  # the shot's policy decides, on the driver
    assert spoiled.meta["defect"] == "flicker" and any(": flicker " in f for f in spoiled.meta["qa"]["flags"])
    lenient = make_job("q3", params=flash.params, qa_thresholds=(("flicker", 1000.0),))  # the shot's thresholds
    assert not any(": flicker " in f for f in clean.render(lenient).meta["qa"]["flags"])


# ----------------------------------------------------------------------------- simulated GPU backend


def test_simulated_backend_declares_itself_and_cross_fades() -> None:
    sim = SimulatedGPUBackend(seconds=0)
    out = sim.interpolate(A, B, (0.5,))
    assert np.array_equal(out[0], crossfade(0.5))
    assert out.meta["simulated"] is True and out.meta["device"].startswith("fake-gpu:")
    assert sim.identity().name == "simulated-gpu" == SimulatedGPUBackend.identify().name
    with pytest.raises(ValueError, match="unknown fault 'melt'"):
        SimulatedGPUBackend(fault="melt")


def test_simulated_faults_fire_only_where_targeted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_seed = SimulatedGPUBackend(seconds=0, fault="identity", fault_seed=7)
    assert np.array_equal(by_seed.interpolate(A, B, (0.5,), seed=7)[0], A)
    assert np.array_equal(by_seed.interpolate(A, B, (0.5,), seed=8)[0], crossfade(0.5))

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    by_device = SimulatedGPUBackend(seconds=0, fault="raise", fault_device="1")
    with pytest.raises(RuntimeError, match="injected failure"):
        by_device.interpolate(A, B, (0.5,))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert by_device.interpolate(A, B, (0.5,)).meta.get("fault") is None

    once = [
        SimulatedGPUBackend(seconds=0, fault="nan", fault_once_dir=str(tmp_path / "f"), fault_limit=2)
        for _ in range(2)
    ]
    outcomes = []
    for sim in once + once:
        try:
            sim.interpolate(A, B, (0.5,))
            outcomes.append("ok")
        except ValueError as exc:
            outcomes.append("nan" if "non-finite" in str(exc) else str(exc))
    assert outcomes == ["nan", "nan", "ok", "ok"]  # two firings shared by every instance, then none


def test_simulated_crash_kills_the_process(tmp_path: Path) -> None:
    script = (
        "import numpy as np; from tooncrafter_model.simulated import SimulatedGPUBackend as S\n"
        "a = np.zeros((4, 4, 3), np.uint8); S(seconds=0, fault='crash').interpolate(a, a + 9, (0.5,))\n"
        "print('survived')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1 and "survived" not in run.stdout


def test_simulated_defects_spoil_only_the_seeds_asked() -> None:
    sim = SimulatedGPUBackend(seconds=0)
    params = {"defect": "tone", "defect_strength": 10.0, "defect_seeds": [3]}
    spoiled = sim.interpolate(A, B, (0.5,), seed=3, params=params)
    assert not np.array_equal(spoiled[0], crossfade(0.5))
    assert spoiled.meta["defect"] == "tone" and spoiled.meta["defect_strength"] == 10.0
    retry = sim.interpolate(A, B, (0.5,), seed=4, params=params)  # a retry with another seed comes out clean
    assert np.array_equal(retry[0], crossfade(0.5)) and "defect" not in retry.meta
    everywhere = sim.interpolate(A, B, (0.5,), seed=4, params={"defect": "flicker"})
    assert everywhere.meta["defect_strength"] == 0.3  # the default strength: clearly visible


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"defect": "melt"}, "defect must be one of tone, flicker, ghost, lines, vanish, got 'melt'"),
        ({"defect": "ghost", "defect_strength": 2}, r"defect_strength for ghost must be in \(0, 1\], got 2"),
        ({"defect": "ghost", "defect_strength": "strong"}, "defect_strength must be a number >= 0, got 'strong'"),
        ({"defect": "ghost", "defect_seeds": 3}, "defect_seeds must be a list of integers >= 0, got 3"),
        ({"defect": "ghost", "defect_seeds": [1, 2.5]}, "defect_seeds must be a list of integers >= 0"),
        ({"defect_colour": "red"}, "takes no parameter defect_colour"),
    ],
)
def test_simulated_defect_params_are_checked(params: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        SimulatedGPUBackend(seconds=0).interpolate(A, B, (0.5,), params=params)
