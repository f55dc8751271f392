"""The one interface every interpolation backend implements, and the registry that loads them.

Flows and the actor pool only ever see `Interpolator`. Foreign conventions (RIFE's pad-to-64,
ToonCrafter's fixed 16 frames at 320x512) are handled inside each adapter.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tooncrafter_model.frames import Frame, Frames, check_frame

OnStep = Callable[[dict[str, Any]], None]

# Bumped whenever a change in this package can change rendered pixels; part of every render key.
CODE_VERSION = "toonfarm-model-1"


@dataclass(frozen=True)
class BackendIdentity:
    """What made a frame: enough to decide whether an earlier render can be reused."""

    name: str
    weights_sha256: str
    config_hash: str
    code_version: str = CODE_VERSION

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def config_hash(settings: dict[str, Any]) -> str:
    """Stable short hash of the settings that change a backend's output."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@runtime_checkable
class Interpolator(Protocol):
    """Load once, then make in-betweens for any number of pairs."""

    name: str

    def identity(self) -> BackendIdentity: ...

    def interpolate(
        self,
        frame_a: Frame,
        frame_b: Frame,
        times: Sequence[float],
        *,
        seed: int = 0,
        prompt: str = "",
        sketches: dict[float, Frame] | None = None,
        params: Mapping[str, Any] | None = None,
        on_step: OnStep | None = None,
    ) -> Frames:
        """Return one HxWx3 uint8 frame per time in `times` (each strictly between 0 and 1).

        `params` are the per-shot settings of the backend (e.g. toon's steps, cfg); only the names its
        registry entry lists are allowed.
        """
        ...


def check_request(frame_a: Frame, frame_b: Frame, times: Sequence[float]) -> None:
    """Shared input checks: two frames of one size and times strictly inside (0, 1)."""
    check_frame(frame_a, "frame_a")
    check_frame(frame_b, "frame_b")
    if frame_a.shape != frame_b.shape:
        raise ValueError(f"keyframes differ in size: {frame_a.shape[:2]} vs {frame_b.shape[:2]}")
    bad = [t for t in times if not 0.0 < float(t) < 1.0]
    if bad:
        raise ValueError(f"times must lie strictly between 0 and 1, got {bad}")


class CrossfadeBackend:
    """A linear cross-fade: the baseline every real backend must beat, and a zero-cost backend for
    measuring orchestration overhead."""

    name = "crossfade"

    @classmethod
    def identify(cls) -> BackendIdentity:
        return BackendIdentity(cls.name, weights_sha256="", config_hash=config_hash({}))

    def identity(self) -> BackendIdentity:
        return self.identify()

    def interpolate(
        self,
        frame_a: Frame,
        frame_b: Frame,
        times: Sequence[float],
        *,
        seed: int = 0,
        prompt: str = "",
        sketches: dict[float, Frame] | None = None,
        params: Mapping[str, Any] | None = None,
        on_step: OnStep | None = None,
    ) -> Frames:
        check_request(frame_a, frame_b, times)
        check_params(self.name, params)
        if sketches:
            raise ValueError("the crossfade backend takes no sketch guidance")
        a, b = frame_a.astype(np.float32), frame_b.astype(np.float32)
        out = Frames(meta={"backend": self.name})
        for i, t in enumerate(times):
            out.append(np.clip((1.0 - t) * a + t * b + 0.5, 0, 255).astype(np.uint8))
            if on_step:
                on_step({"step": i + 1, "total": len(times), "t": float(t)})
        return out


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend lives ("module:factory", imported only when used) and the per-shot parameters
    its `interpolate` accepts, so a shot list is checked without importing torch."""

    factory: str
    params: frozenset[str] = frozenset()
    sketches: bool = False  # takes sketch guidance


BACKENDS: dict[str, BackendSpec] = {
    "crossfade": BackendSpec("tooncrafter_model.backend:CrossfadeBackend"),
    "rife": BackendSpec("tooncrafter_model.rife:RifeBackend"),
    "toon": BackendSpec(
        "tooncrafter_model.toon:ToonBackend",
        frozenset({"steps", "eta", "cfg", "rescale", "fs", "sketch_scale"}),
        sketches=True,
    ),
    "simulated-gpu": BackendSpec(
        "tooncrafter_model.simulated:SimulatedGPUBackend", frozenset({"defect", "defect_strength", "defect_seeds"})
    ),
}


def check_params(name: str, params: Mapping[str, Any] | None) -> None:
    """Raise ValueError naming any parameter that backend `name` does not take."""
    allowed = BACKENDS[name].params if name in BACKENDS else frozenset()
    unknown = sorted(set(params or {}) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"the {name} backend takes no parameter {', '.join(unknown)} (it takes: {takes})")


def _factory(name: str) -> Any:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    module, attr = BACKENDS[name].factory.split(":")
    return getattr(importlib.import_module(module), attr)


def identify(name: str, **settings: Any) -> BackendIdentity:
    """The identity `load_backend(name, **settings)` would report, without loading a model when the
    backend can say it cheaply (a classmethod `identify`); render keys are planned with it."""
    factory = _factory(name)
    if hasattr(factory, "identify"):
        identity: BackendIdentity = factory.identify(**settings)
        return identity
    return load_backend(name, **settings).identity()


def load_backend(name: str, **settings: Any) -> Interpolator:
    """Build the backend called `name` with its settings (device, weights path, steps, ...)."""
    backend: Interpolator = _factory(name)(**settings)
    return backend
