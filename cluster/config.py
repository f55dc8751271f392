"""Frozen settings for a render worker and for the pool of them; resources are booked from here only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tooncrafter_model.backend import DEFAULT_BACKEND, BackendSpec

Pairs = tuple[tuple[str, Any], ...]


def _as_pairs(value: Mapping[str, Any] | Iterable[tuple[str, Any]], what: str) -> Pairs:
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple(sorted((str(k), v) for k, v in items))
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"WorkerConfig.{what}: duplicate keys in {keys}")
    return pairs


@dataclass(frozen=True)
class WorkerConfig:
    """What one actor loads and what it books from Ray.

    `backend_settings` and `resources` accept a mapping or (key, value) pairs and are stored as sorted
    pairs, so the config stays frozen. `spec` is the backend's registry entry (default: the worker's own). `resources` are custom Ray resources, e.g.
    `{"vram_gb": 12}` on a farm whose nodes declare their VRAM. `reason` records why these numbers.
    """

    backend: str = DEFAULT_BACKEND
    backend_settings: Pairs | Mapping[str, Any] = ()
    spec: BackendSpec | None = None  # the backend's registry entry, as the driver planned with it
    num_cpus: float = 1
    num_gpus: float = 0
    resources: Pairs | Mapping[str, float] = ()
    reason: str = ""
    umask: int | None = None  # the farm's umask for what the worker writes; None keeps the process's

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend_settings", _as_pairs(self.backend_settings, "backend_settings"))
        object.__setattr__(self, "resources", _as_pairs(self.resources, "resources"))
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"WorkerConfig: num_cpus and num_gpus must be >= 0, got {self.num_cpus}, {self.num_gpus}")
        for name, amount in self.resource_pairs():
            if not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"WorkerConfig.resources[{name!r}]: must be a number >= 0, got {amount!r}")

    def settings(self) -> dict[str, Any]:
        """The backend settings as keyword arguments for `load_backend`."""
        return dict(_as_pairs(self.backend_settings, "backend_settings"))

    def resource_pairs(self) -> Pairs:
        """The custom resources as sorted (name, amount) pairs."""
        return _as_pairs(self.resources, "resources")

    def ray_options(self) -> dict[str, Any]:
        """The resource part of the actor's Ray options."""
        return {
            "num_cpus": float(self.num_cpus),
            "num_gpus": float(self.num_gpus),
            "resources": {k: float(v) for k, v in self.resource_pairs()},
        }


@dataclass(frozen=True)
class PoolConfig:
    """How many actors, how much work each holds at once, and how failures are retried."""

    actors: int
    max_in_flight_per_actor: int = 2  # one running + one queued keeps an actor busy between pairs
    max_attempts: int = 3
    pair_timeout_s: float = 600.0  # counted from when a pair starts on its actor, not from submission
    qa_checks: bool = True
    max_restarts: int = 4  # per actor; a crash or a timeout kill restarts it and reloads its model
    start_timeout_s: float = 300.0  # for an actor to be scheduled and load its model, after each (re)start

    def __post_init__(self) -> None:
        checks = {
            "actors": self.actors >= 1,
            "max_in_flight_per_actor": self.max_in_flight_per_actor >= 1,
            "max_attempts": self.max_attempts >= 1,
            "pair_timeout_s": self.pair_timeout_s > 0,
            "max_restarts": self.max_restarts >= 0,
            "start_timeout_s": self.start_timeout_s > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"PoolConfig.{name}: invalid value {getattr(self, name)!r}")
