"""The render worker: a plain class that Ray runs as an actor, one loaded backend per process.

It reads a pair's keyframes from shared storage, interpolates, checks the output, publishes the frames
atomically and returns paths, pixel hashes and timings; pixels never travel back to the driver. The
same class runs without Ray (tests, a laptop demo): it then names itself after its process.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.actor import ActorHandle

from cluster.config import WorkerConfig
from cluster.jobs import Attempt, PairJob, PairResult
from cluster.qa import check_output
from cluster.staging import publish
from tooncrafter_model.backend import Interpolator, OnStep, backend_spec, build
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, pixel_hash, read_frame, write_frame
from tooncrafter_model.quality import QAThresholds
from tooncrafter_model.store import complete_frames, share_files


@dataclass(frozen=True)
class WorkerInfo:
    """Who a worker is right now; `process` and `pid` change when Ray restarts the actor."""

    worker: str  # stable for the actor's lifetime, restarts included
    node: str
    pid: int
    process: str
    model_loads: int  # in this process
    accelerator_ids: tuple[str, ...]  # GPU ids Ray assigned (fake or real)
    backend: str
    host: str = ""  # the machine's host name, as people name it (the node is Ray's hex id)


def _identity() -> tuple[str, str, tuple[str, ...]]:
    if not ray.is_initialized():
        return f"local-{os.getpid()}", "local", ()
    ctx = ray.get_runtime_context()
    actor_id = ctx.get_actor_id()
    worker = f"worker-{actor_id[:12]}" if actor_id else f"driver-{os.getpid()}"
    gpus = tuple(str(i) for i in ctx.get_accelerator_ids().get("GPU", []))
    return worker, ctx.get_node_id(), gpus


def _warm_codec() -> None:
    # The first PNG read or write in a process imports OpenCV (0.3 s+ on a busy core): pay it while
    # loading, not on the first pair's clock, where it would count against the pair and the farm.
    with tempfile.TemporaryDirectory(prefix="toonfarm-warm-") as tmp:
        read_frame(write_frame(Path(tmp) / "warm.png", np.zeros((2, 2, 3), np.uint8)))


STEP_EVERY_S = 0.5  # a 50-step DDIM pair reports a few times a second at most, never per step


def _step_reporter(render_key: str, board: ActorHandle | None) -> OnStep | None:
    """An `on_step` that leaves (step, steps) on the board at most every STEP_EVERY_S, the first after that
    long: a pair quicker than that says nothing (its result says it is done), so short pairs cost no
    message. Fire-and-forget, so a busy board never slows the sampler."""
    if board is None:
        return None
    last = [time.monotonic()]

    def report(info: Mapping[str, Any]) -> None:
        step, steps = int(info["step"]), int(info["total"])
        now = time.monotonic()
        if now - last[0] >= STEP_EVERY_S:
            last[0] = now
            board.report.remote(render_key, step, steps)

    return report


class RenderWorker:
    """Loads the configured backend once and renders `PairJob`s into their output folders."""

    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        if cfg.umask is not None:  # a Ray worker process starts with the raylet's umask, not the driver's
            share_files(cfg.umask)
        self._worker, self._node, self._gpus = _identity()
        self._process = uuid.uuid4().hex[:12]
        self._loads = 0
        self._backend = self._load()
        _warm_codec()

    def _load(self) -> Interpolator:
        backend = build(self.cfg.spec or backend_spec(self.cfg.backend), **self.cfg.settings())
        self._loads += 1
        return backend

    def info(self) -> WorkerInfo:
        """Identity and model loads of this process; also the pool's readiness probe."""
        return WorkerInfo(
            worker=self._worker,
            node=self._node,
            pid=os.getpid(),
            process=self._process,
            model_loads=self._loads,
            accelerator_ids=self._gpus,
            backend=self._backend.name,
            host=socket.gethostname(),
        )

    def render(self, job: PairJob, qa: bool = True, board: ActorHandle | None = None) -> PairResult:
        """Render one pair; any failure comes back as `ok=False` with the attempt that failed. With a
        `board` (cluster.pool.StepBoard), the backend's steps are left there as it makes them."""
        started = time.time()
        try:
            paths, hashes, meta = self._render(job, qa, _step_reporter(job.render_key, board))
        except Exception as exc:  # the pool decides about retries; the worker reports what the type says
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            attempt = self._attempt(started, error, retry=not isinstance(exc, UserError))
            return PairResult(job=job, ok=False, attempts=(attempt,), error=error)
        return PairResult(
            job=job,
            ok=True,
            frame_paths=tuple(str(p) for p in paths),
            frame_hashes=tuple(hashes),
            attempts=(self._attempt(started, None),),
            meta=meta,
        )

    def _render(self, job: PairJob, qa: bool, on_step: OnStep | None) -> tuple[list[Path], list[str], dict[str, object]]:
        t0 = time.perf_counter()
        out_dir = Path(job.out_dir)
        existing = complete_frames(out_dir, len(job.times))
        if existing is not None:
            return existing, [pixel_hash(read_frame(p)) for p in existing], {"kept_existing": True}
        frame_a, frame_b = read_frame(job.frame_a), read_frame(job.frame_b)
        sketches: dict[float, Frame] | None = {t: read_frame(p) for t, p in job.sketches} or None
        t1 = time.perf_counter()
        frames = self._backend.interpolate(
            frame_a, frame_b, job.times, seed=job.seed, prompt=job.prompt, sketches=sketches,
            params=dict(job.params) or None, on_step=on_step,
        )
        t2 = time.perf_counter()
        thresholds = QAThresholds(**dict(job.qa_thresholds))
        quality = check_output(frame_a, frame_b, job.times, frames, thresholds) if qa else None
        t3 = time.perf_counter()
        paths, kept = publish(out_dir, frames)
        hashes = [pixel_hash(read_frame(p)) for p in paths] if kept else [pixel_hash(f) for f in frames]
        meta: dict[str, object] = dict(getattr(frames, "meta", {}))
        meta.update(
            kept_existing=kept,
            read_s=round(t1 - t0, 6),
            interpolate_s=round(t2 - t1, 6),
            qa_s=round(t3 - t2, 6),
            write_s=round(time.perf_counter() - t3, 6),
        )
        if quality is not None:
            meta["qa"] = quality
        return paths, hashes, meta

    def _attempt(self, started: float, error: str | None, *, retry: bool = True) -> Attempt:
        return Attempt(
            worker=self._worker,
            node=self._node,
            started_at=started,
            finished_at=time.time(),
            error=error,
            model_loads=self._loads,
            process=self._process,
            retry=retry,
            host=socket.gethostname(),
            gpus=self.cfg.num_gpus,
        )
