"""The one interface every interpolation backend implements, and the registry that declares and loads them.

Flows and the actor pool only ever see `Interpolator`. Foreign conventions (RIFE's pad-to-64,
ToonCrafter's fixed 16 frames at 320x512) are handled inside each adapter. A new backend is one module
(a subclass of `Interpolator` that implements `render`) plus one `BACKENDS` entry saying what it needs:
its per-shot parameters with their types and ranges, the toonfarm settings it is built with, whether it
runs on a torch device, whether it takes sketches. No other module names a backend.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, TypeVar

import numpy as np

from tooncrafter_model.defects import DEFECTS
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, Frames, check_frame

OnStep = Callable[[dict[str, Any]], None]
S = TypeVar("S")

# Bumped whenever a change in this package can change rendered pixels; part of every render key.
CODE_VERSION = "toonfarm-model-1"


class BackendError(UserError):
    """A backend was asked for something it does not take: an unknown backend, setting or parameter, a
    value out of its range, keyframes of two sizes, sketches it cannot use."""


# ---------------------------------------------------------------------------------------------------
# What a backend declares
# ---------------------------------------------------------------------------------------------------


# A per-shot parameter's checked value: JSON-able and hashable, since it is part of a render key.
ParamValue = int | float | str | tuple[int, ...]


def _span(low: float, high: float) -> str:
    return f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Param:
    """A number a backend takes: an int or a float within [low, high]."""

    kind: type[int] | type[float]
    low: float
    high: float = math.inf

    def check(self, backend: str, name: str, value: Any) -> int | float:
        """`value` as this kind, or one BackendError line naming the backend and the parameter."""
        ok = _is_number(value)
        if ok and self.kind is int:
            ok = float(value).is_integer()
        if not ok or not self.low <= float(value) <= self.high:
            what = "an integer" if self.kind is int else "a number"
            raise BackendError(f"{backend}: {name} must be {what} {_span(self.low, self.high)}, got {value!r}")
        return self.kind(value)


@dataclass(frozen=True)
class Choice:
    """A name a backend takes, one of `names`."""

    names: tuple[str, ...]

    def check(self, backend: str, name: str, value: Any) -> str:
        if value not in self.names:
            raise BackendError(f"{backend}: {name} must be one of {', '.join(self.names)}, got {value!r}")
        return str(value)


@dataclass(frozen=True)
class Ints:
    """A list of integers within [low, high] a backend takes (kept as a tuple: render keys hash it)."""

    low: float
    high: float = math.inf

    def check(self, backend: str, name: str, value: Any) -> tuple[int, ...]:
        listed = isinstance(value, (list, tuple))
        if not listed or any(not _is_number(x) or not float(x).is_integer() for x in value) or not all(
            self.low <= float(x) <= self.high for x in value
        ):
            span = _span(self.low, self.high)
            raise BackendError(f"{backend}: {name} must be a list of integers {span}, got {value!r}")
        return tuple(int(x) for x in value)


@dataclass(frozen=True)
class BackendSpec:
    """A registry entry: where the backend lives ("module:Class", imported only when used) and what it needs.

    `params` are the per-shot parameters its `render` takes (a shot list is checked against them without
    importing torch). `settings` maps a construction keyword to the toonfarm setting it is built with
    (`model_cache`, `toon_checkpoint`, ...). `device`: it runs on a torch device, so it is built with the
    farm's `device`, and on the CPU with `threads` (the CPUs booked per worker).
    """

    factory: str
    params: Mapping[str, Param | Choice | Ints] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)
    device: bool = False
    sketches: bool = False

    def check_params(self, name: str, params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
        """The per-shot parameters `params`, typed and in range; BackendError names anything else."""
        unknown = sorted(set(params or {}) - set(self.params))
        if unknown:
            takes = ", ".join(sorted(self.params)) or "none"
            raise BackendError(f"the {name} backend takes no parameter {', '.join(unknown)} (it takes: {takes})")
        return {k: self.params[k].check(name, k, v) for k, v in (params or {}).items()}


BACKENDS: dict[str, BackendSpec] = {
    "rife": BackendSpec("tooncrafter_model.rife:RifeBackend", settings={"cache_dir": "model_cache"}, device=True),
    "toon": BackendSpec(
        "tooncrafter_model.toon:ToonBackend",
        params={
            "steps": Param(int, 1, 1000), "eta": Param(float, 0), "cfg": Param(float, 0),
            "rescale": Param(float, 0, 1), "fs": Param(int, 1, 1000), "sketch_scale": Param(float, 0),
        },
        settings={
            "cache_dir": "model_cache", "checkpoint": "toon_checkpoint",
            "sketch_checkpoint": "toon_sketch_checkpoint", "dtype": "toon_dtype",
        },
        device=True,
        sketches=True,
    ),
    "crossfade": BackendSpec("tooncrafter_model.backend:CrossfadeBackend"),
    "simulated-gpu": BackendSpec(
        "tooncrafter_model.simulated:SimulatedGPUBackend",
        # Defects for the quality policy's tests (tooncrafter_model/defects.py); the strength's range
        # depends on the defect, which the backend checks.
        params={"defect": Choice(DEFECTS), "defect_strength": Param(float, 0), "defect_seeds": Ints(0)},
    ),
}
DEFAULT_BACKEND = "rife"


def backend_spec(name: str) -> BackendSpec:
    """The registry entry of `name`, or one BackendError line listing the backends there are."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def check_params(name: str, params: Mapping[str, Any] | None) -> dict[str, ParamValue]:
    """Backend `name`'s per-shot parameters, typed and in range; BackendError names anything else."""
    return backend_spec(name).check_params(name, params)


def settings_from(kind: type[S], backend: str, settings: Mapping[str, Any]) -> S:
    """`kind(**settings)` for a backend's settings dataclass; a name it does not have is one BackendError."""
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BackendError(f"{backend}: unknown setting {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return kind(**settings)


# ---------------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Request:
    """One checked request: two keyframes of one size, times strictly inside (0, 1), sketches of the
    keyframes' size at such times, and the backend's own per-shot parameters, typed."""

    frame_a: Frame
    frame_b: Frame
    times: tuple[float, ...]
    seed: int = 0
    prompt: str = ""
    sketches: Mapping[float, Frame] = field(default_factory=dict)
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    on_step: OnStep | None = None

    def step(self, done: int, t: float) -> None:
        """Report that in-between `done` (1-based), at time t, is made."""
        if self.on_step:
            self.on_step({"step": done, "total": len(self.times), "t": float(t)})


class Interpolator:
    """Load once, then make in-betweens for any number of pairs. Subclasses implement `render` (and
    `identify` when settings or weights change their pixels); the checks happen here, once."""

    name: ClassVar[str]
    _spec: BackendSpec | None = None  # set by `build`

    @property
    def spec(self) -> BackendSpec:
        """The registry entry this backend was built from (its name's entry when constructed directly)."""
        return self._spec or backend_spec(self.name)

    @classmethod
    def identify(cls, **settings: Any) -> BackendIdentity:
        """The identity a backend built with `settings` reports, without building it. By default no
        weights and nothing that changes pixels."""
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
        sketches: Mapping[float, Frame] | None = None,
        params: Mapping[str, Any] | None = None,
        on_step: OnStep | None = None,
    ) -> Frames:
        """One HxWx3 uint8 frame per time in `times` (each strictly between 0 and 1); `params` are the
        per-shot settings of the backend (e.g. toon's steps, cfg), as its registry entry lists them."""
        asked = Request(frame_a, frame_b, tuple(times), seed, prompt, dict(sketches or {}), dict(params or {}), on_step)
        return self.render(self.check(asked))

    def check(self, request: Request) -> Request:
        """The request checked against this backend's registry entry, its params typed; BackendError names
        what is wrong."""
        frame_a, frame_b = check_frame(request.frame_a, "frame_a"), check_frame(request.frame_b, "frame_b")
        if frame_a.shape != frame_b.shape:
            raise BackendError(f"keyframes differ in size: {frame_a.shape[:2]} vs {frame_b.shape[:2]}")
        bad = [t for t in request.times if not 0.0 < float(t) < 1.0]
        if bad:
            raise BackendError(f"times must lie strictly between 0 and 1, got {bad}")
        if request.sketches and not self.spec.sketches:
            raise BackendError(f"the {self.name} backend takes no sketch guidance")
        for t, sketch in request.sketches.items():
            what = f"{self.name}: sketch at t={float(t):g}"
            if not 0.0 < float(t) < 1.0:
                raise BackendError(f"{what}: times must lie strictly between 0 and 1")
            if check_frame(sketch, what).shape != frame_a.shape:
                raise BackendError(f"{what} is {sketch.shape[:2]}, the keyframes are {frame_a.shape[:2]}")
        params = self.spec.check_params(self.name, request.params)
        return replace(request, times=tuple(float(t) for t in request.times), seed=int(request.seed), params=params)

    def render(self, request: Request) -> Frames:
        """Make the request's in-betweens; called only with requests `check` has passed."""
        raise NotImplementedError


def crossfade(a: Frame, b: Frame, t: float) -> Frame:
    """(1 - t) * A + t * B, rounded: the baseline in-between."""
    return np.clip((1.0 - t) * a.astype(np.float32) + t * b.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


class CrossfadeBackend(Interpolator):
    """A linear cross-fade: the baseline every real backend must beat, and a zero-cost backend for
    measuring orchestration overhead."""

    name = "crossfade"

    def render(self, request: Request) -> Frames:
        out = Frames(meta={"backend": self.name})
        for i, t in enumerate(request.times, 1):
            out.append(crossfade(request.frame_a, request.frame_b, t))
            request.step(i, t)
        return out


# ---------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------


def _factory(spec: BackendSpec) -> type[Interpolator]:
    module, attr = spec.factory.split(":")
    factory: type[Interpolator] = getattr(importlib.import_module(module), attr)
    return factory


def identify(name: str, **settings: Any) -> BackendIdentity:
    """The identity `load_backend(name, **settings)` would report, without loading a model; render keys
    are planned with it."""
    return _factory(backend_spec(name)).identify(**settings)


def build(spec: BackendSpec, **settings: Any) -> Interpolator:
    """Build the backend of a registry entry: a worker gets the entry its driver planned with."""
    backend = _factory(spec)(**settings)
    backend._spec = spec
    return backend


def load_backend(name: str, **settings: Any) -> Interpolator:
    """Build the backend called `name` with its settings (device, weights path, steps, ...)."""
    return build(backend_spec(name), **settings)
