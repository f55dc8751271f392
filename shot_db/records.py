"""Plain frozen records that go in and out of the shot DB functions.

Inputs (`RenderSpec`, `VersionPair`, `OutputFrame`, `OutputFile`, `VersionOutputs`) are what tasks hand
in; outputs (`NewVersion`, `VersionInfo`, `Lineage`, ...) are detached snapshots, safe to use after the
session closes. `OutputFile` is both: what a version delivered, handed in and read back alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shot_db.models import ShotVersion

# ---------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class RenderSpec:
    """Everything that decides a pair's pixels, i.e. what its render key was computed from."""

    render_key: str
    keyframe_a: str  # pixel hashes of the two keyframes
    keyframe_b: str
    times: tuple[float, ...]  # where the in-betweens fall, each in (0, 1); one frame per time
    backend: str
    weights_sha256: str
    config_hash: str
    code_version: str
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)  # JSON-able: prompt, steps, cfg, ...
    sketch_hashes: tuple[tuple[float, str], ...] = ()  # (time, sketch pixel hash)


@dataclass(frozen=True)
class VersionPair:
    """A render used by a version, with the pair's source frame indices in this shot."""

    render_key: str
    frame_a: int
    frame_b: int


@dataclass(frozen=True)
class OutputFrame:
    """One assembled frame: its file (None when no image sequence was delivered), its pixels, and its
    source (a render's in-between or a keyframe)."""

    path: str | None
    pixel_hash: str
    render_key: str | None = None
    inbetween: int | None = None  # 1-based index into that render's frames
    keyframe_hash: str | None = None


@dataclass(frozen=True)
class OutputFile:
    """One deliverable of a version: a movie file, or an image sequence's folder, with its format.

    `kind` is the format's registry name (png, h264, prores4444...); `details` what reading it back
    found (codec, pixel format, colour tags, size, rate, timecode, bytes...). `sha256` is None only on
    PNG sequences carried over from revision 0002, which never hashed them."""

    kind: str
    path: str
    sha256: str | None
    frame_count: int
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionOutputs:
    """What assembling a version wrote: its deliverables in the shot's order, the sidecar, every frame."""

    outputs: tuple[OutputFile, ...]
    sidecar_path: str
    frames: tuple[OutputFrame, ...]


@dataclass(frozen=True)
class KeyframeRecord:
    """A keyframe to record: its pixels' hash, size and stored file."""

    pixel_hash: str
    width: int
    height: int
    path: str


@dataclass(frozen=True)
class RenderClaim:
    """A pair about to be rendered: its spec, its shot, and its frames in that shot."""

    spec: RenderSpec
    shot_id: uuid.UUID
    frame_a: int
    frame_b: int


@dataclass(frozen=True)
class AttemptRecord:
    """One try of a render, as a worker reported it (ok when `error` is None)."""

    worker: str
    node: str
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    model_loads: int = 0
    host: str | None = None  # the worker machine's host name
    gpus: float = 0.0  # GPUs the worker held


@dataclass(frozen=True)
class BatchShotRecord:
    """How one shot of a batch ended, as the batch reports it."""

    shot: str  # show/sequence/code
    status: str  # new-version, unchanged, failed
    version: int | None = None
    frames: int = 0
    rendered: int = 0
    reused: int = 0
    failed: int = 0
    worker_seconds: float = 0.0
    gpu_seconds: float = 0.0
    video: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RenderOutcome:
    """How a render's tries ended: finished (frames) when `error` is None, else failed."""

    render_key: str
    attempts: tuple[AttemptRecord, ...]
    output_dir: str | None = None
    frame_hashes: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class QATryRecord:
    """One render a quality decision tried, with the flags its scores raised under the policy."""

    render_key: str
    flags: tuple[str, ...]
    severity: float  # the largest score / threshold ratio of its frames: above 1 it is flagged


@dataclass(frozen=True)
class QADecisionRecord:
    """What the quality policy did with a pair whose first render was flagged."""

    render_key: str  # the first try: the render the shot asked for
    accepted_key: str  # the try whose frames the shot uses
    policy_hash: str
    policy: Mapping[str, Any]  # JSON-able: on_fail, retries, fallback, thresholds
    outcome: str  # a QAOutcome value: flagged, retried, fell-back
    reason: str  # one line: what was flagged in the first try
    shot_id: uuid.UUID
    tries: tuple[QATryRecord, ...]  # in order, the first try first


# --------------------------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class NewVersion:
    """What `create_version` did: the version, and whether it was made now (False: latest was identical)."""

    version: ShotVersion
    created: bool


@dataclass(frozen=True)
class KeyframeInfo:
    """A keyframe as a version used it: frame index in the shot (None inside a render), pixels, file."""

    pixel_hash: str
    path: str
    width: int
    height: int
    frame: int | None = None
    origin: str | None = None  # the file it was drawn in (a video's frame, an image), as the version used it


@dataclass(frozen=True)
class AttemptInfo:
    """One try of a render."""

    attempt: int
    ok: bool
    worker: str
    node: str
    started_at: datetime
    finished_at: datetime
    error: str | None
    model_loads: int
    flow_run_id: str | None
    host: str | None = None
    gpus: float | None = None


@dataclass(frozen=True)
class QATryInfo:
    """One try of a quality decision: its render's key, backend and seed, and the flags it raised."""

    number: int  # 1: the render the shot asked for
    render_key: str
    backend: str
    seed: int
    flags: tuple[str, ...]
    severity: float


@dataclass(frozen=True)
class QADecisionInfo:
    """A quality decision: why a pair was flagged, what was tried, which render the shot uses."""

    outcome: str  # flagged, retried, fell-back
    reason: str
    policy: Mapping[str, Any]
    render_key: str
    accepted_key: str
    tries: tuple[QATryInfo, ...]
    flow_run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class RenderInfo:
    """A render's full provenance: inputs (keyframes, backend, weights, params, seed) and how it ran."""

    render_key: str
    status: str
    frame_a: int  # source frame indices of the pair in the version's shot
    frame_b: int
    keyframe_a: KeyframeInfo
    keyframe_b: KeyframeInfo
    times: tuple[float, ...]
    backend: str
    weights_sha256: str
    config_hash: str
    code_version: str
    params: Mapping[str, Any]
    seed: int
    sketch_hashes: tuple[tuple[float, str], ...]
    output_dir: str | None
    frame_hashes: tuple[str, ...]
    worker: str | None
    node: str | None
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    meta: Mapping[str, Any]
    flow_run_id: str | None
    attempts: tuple[AttemptInfo, ...]
    qa: QADecisionInfo | None = None  # the latest quality decision that chose this render, if any
    host: str | None = None  # the worker machine's host name (None: recorded before revision 0005)
    gpus: float | None = None

    @property
    def worker_seconds(self) -> float:
        """What the render cost: the time of every attempt, failed ones too."""
        return sum((a.finished_at - a.started_at).total_seconds() for a in self.attempts)


@dataclass(frozen=True)
class VersionInfo:
    """A shot version with everything it was assembled from."""

    show: str
    sequence: str
    code: str
    number: int
    assembly_key: str
    frame_count: int
    fps: float
    sidecar_path: str
    settings: Mapping[str, Any]
    flow_run_id: str | None
    created_at: datetime
    outputs: tuple[OutputFile, ...]  # in the order the shot list asked for them
    renders: tuple[RenderInfo, ...]  # in pair order
    keyframes: tuple[KeyframeInfo, ...]  # in frame order

    def output(self, kind: str) -> OutputFile | None:
        """The version's output of format `kind`, if it delivered one."""
        return next((o for o in self.outputs if o.kind == kind), None)


@dataclass(frozen=True)
class FrameInfo:
    """One output frame of a version and where it came from (both sources None: recorded before 0002)."""

    number: int
    path: str | None
    pixel_hash: str
    render_key: str | None
    inbetween: int | None
    keyframe_hash: str | None


@dataclass(frozen=True)
class Lineage:
    """What produced an output: the version, and for a single frame, that frame and its source."""

    version: VersionInfo
    frame: FrameInfo | None  # None when the query named the whole version (an output or its sidecar)
    output: OutputFile | None = None  # the output the query named by its path or sha256

    @property
    def render(self) -> RenderInfo | None:
        """The render whose in-between this frame is, if it is one."""
        key = self.frame.render_key if self.frame else None
        return next((r for r in self.version.renders if r.render_key == key), None)

    @property
    def keyframe(self) -> KeyframeInfo | None:
        """The held keyframe this frame shows, if it is one."""
        key = self.frame.keyframe_hash if self.frame else None
        return next((k for k in self.version.keyframes if k.pixel_hash == key), None)


@dataclass(frozen=True)
class BatchShotInfo:
    """One shot of a batch as it ended."""

    shot: str
    status: str
    version: int | None
    frames: int
    rendered: int
    reused: int
    failed: int
    worker_seconds: float
    gpu_seconds: float
    video: str | None
    error: str | None


@dataclass(frozen=True)
class BatchInfo:
    """A batch run and its shots."""

    flow_run_id: str
    flow_name: str
    name: str | None
    trigger: str | None
    shot_list_path: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    rendered: int
    reused: int
    failed: int
    worker_seconds: float
    gpu_seconds: float
    shots: tuple[BatchShotInfo, ...]
