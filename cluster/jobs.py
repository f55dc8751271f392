"""The records that cross the Ray boundary: plain, frozen, picklable, no pixels."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PairJob:
    """One keyframe pair to interpolate. Paths point into storage every node can see."""

    render_key: str  # content hash of everything that decides the pixels; also the job's id
    shot: str  # shot id ("show/sequence/code"): for grouping results and priority
    frame_a: str  # keyframe PNG paths
    frame_b: str
    times: tuple[float, ...]  # where the in-betweens fall, each in (0, 1)
    out_dir: str  # final folder for this pair's frames; written atomically as a whole
    seed: int = 0
    prompt: str = ""
    priority: int = 0  # higher goes first
    sketches: tuple[tuple[float, str], ...] = ()  # (time, sketch PNG path)
    params: tuple[tuple[str, object], ...] = ()  # the backend's per-shot parameters, sorted by name
    qa_thresholds: tuple[tuple[str, float], ...] = ()  # the shot's flag thresholds (QAThresholds); () the defaults


@dataclass(frozen=True)
class Attempt:
    """One try of a pair on one worker; failed tries are kept for provenance."""

    worker: str
    node: str
    started_at: float  # unix seconds
    finished_at: float
    error: str | None = None
    model_loads: int = 0  # loads of the worker's model at the time of this attempt, restarts included
    process: str = ""  # id of the worker process that made the attempt; a new one after each restart
    retry: bool = True  # False when the error's type says the job itself is bad: no worker can do it
    host: str = ""  # the worker machine's host name
    gpus: float = 0.0  # GPUs the worker held (booked, fake or real): its time is GPU time when above 0


@dataclass(frozen=True)
class PairResult:
    """What a worker made of a job: frame paths and pixel hashes, timings, and every attempt."""

    job: PairJob
    ok: bool
    frame_paths: tuple[str, ...] = ()
    frame_hashes: tuple[str, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None  # set when ok is False: the last attempt's error
    meta: dict[str, object] = field(default_factory=dict)  # backend notes (padding, steps, dtype, vram)

    @property
    def seconds(self) -> float:
        last = self.attempts[-1] if self.attempts else None
        return (last.finished_at - last.started_at) if last else 0.0
