"""A SIMULATED GPU backend for scheduling tests and farm benchmarks: no model, no GPU work.

`SimulatedGPUBackend` sleeps a fixed time per pair, as if a GPU were busy, and returns a linear
cross-fade. It declares that it runs on a *fake* GPU: Ray's `num_gpus` booking only sets
`CUDA_VISIBLE_DEVICES` for the process, nothing here touches a device. It never stands in for a real
render; its identity says "simulated-gpu" so nothing it makes can be mistaken for a model's output.

It can also misbehave on purpose, so that the actor pool's retries are tested against real failures:

| fault        | what the call does                                              |
|--------------|-----------------------------------------------------------------|
| `"black"`    | returns all-black frames (QA must flag them)                    |
| `"identity"` | returns copies of keyframe A (QA must flag them)                |
| `"nan"`      | raises ValueError, as a backend's own NaN check would           |
| `"raise"`    | raises RuntimeError                                             |
| `"hang"`     | sleeps `hang_s` (default an hour): the pool's timeout must act  |
| `"crash"`    | `os._exit(1)`: the worker process dies mid-pair                 |

A fault fires only when every filter that is set matches, which is how it targets one actor or one
pair while a retry elsewhere succeeds:
- `fault_seed`: only pairs rendered with this seed;
- `fault_device`: only in the process whose `CUDA_VISIBLE_DEVICES` equals this (one fake GPU);
- `fault_once_dir` + `fault_limit`: only the first `fault_limit` calls across all processes and
  restarts; each firing claims a marker file in that folder with an exclusive create.

Faults break a render; defects spoil its pixels the way generative in-betweeners do, for the quality
scores to find (tooncrafter_model/defects.py). They are per-shot params, so one shot of a farm run can
misbehave while the others stay clean:
- `defect`: tone, flicker, ghost, lines or vanish;
- `defect_strength`: how strong (the defect's own unit; default: clearly visible);
- `defect_seeds`: only pairs rendered with one of these seeds, so a retry with another seed comes out clean.
The clean output is a cross-fade, which is a good in-between only for small motions: tests of the
quality policy use keyframes a few pixels apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tooncrafter_model.backend import BackendError, Interpolator, ParamValue, Request, crossfade
from tooncrafter_model.defects import DEFAULT_STRENGTH, check_defect, inject
from tooncrafter_model.frames import Frames

FAULTS = ("black", "identity", "nan", "raise", "hang", "crash")


class SimulatedGPUBackend(Interpolator):
    """Sleeps `seconds` per pair on a declared fake GPU and returns a cross-fade (simulation only)."""

    name = "simulated-gpu"

    def __init__(
        self,
        seconds: float = 1.0,
        fault: str | None = None,
        *,
        fault_seed: int | None = None,
        fault_device: str | None = None,
        fault_once_dir: str | None = None,
        fault_limit: int = 1,
        hang_s: float = 3600.0,
    ) -> None:
        if seconds < 0:
            raise BackendError(f"simulated-gpu: seconds must be >= 0, got {seconds}")
        if fault is not None and fault not in FAULTS:
            raise BackendError(f"simulated-gpu: unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        if fault_limit < 1:
            raise BackendError(f"simulated-gpu: fault_limit must be >= 1, got {fault_limit}")
        self.seconds = float(seconds)
        self.fault = fault
        self.fault_seed = fault_seed
        self.fault_device = fault_device
        self.fault_once_dir = fault_once_dir
        self.fault_limit = fault_limit
        self.hang_s = float(hang_s)
        # Read once: Ray sets it for the actor's process from its num_gpus booking.
        self.device = f"fake-gpu:{os.environ.get('CUDA_VISIBLE_DEVICES', '')}"

    # identify(): the default. Pixels never depend on the settings (faults aside, which QA rejects), so
    # neither does the key.

    def render(self, request: Request) -> Frames:
        """Sleep as if rendering, frame by frame, cross-fading; misbehave instead when a targeted fault fires."""
        frame_a, seed = request.frame_a, request.seed
        defect = _defect(request.params, seed)
        fault = self.fault if self.fault and self._fault_fires(seed) else None
        if fault == "crash":
            os._exit(1)
        if fault == "hang":
            time.sleep(self.hang_s)
        if fault in ("nan", "raise"):
            time.sleep(self.seconds)  # fails at the end, as a sampler's decode does
        if fault == "nan":
            raise ValueError(f"simulated-gpu: non-finite values in the decoded frames (injected, seed {seed})")
        if fault == "raise":
            raise RuntimeError(f"simulated-gpu: injected failure (seed {seed})")
        out = Frames(meta={"backend": self.name, "simulated": True, "device": self.device, "seconds": self.seconds})
        for i, t in enumerate(request.times, 1):
            time.sleep(self.seconds / len(request.times))  # frame by frame, as a sampler reports its steps
            if fault == "black":
                frame = np.zeros_like(frame_a)
            elif fault == "identity":
                frame = frame_a.copy()
            else:
                frame = crossfade(frame_a, request.frame_b, t)
            out.append(frame)
            request.step(i, t)
        if fault:
            out.meta["fault"] = fault
        if defect is not None:
            name, strength = defect
            out[:] = inject(name, frame_a, request.frame_b, request.times, out, strength=strength, seed=seed)
            out.meta.update(defect=name, defect_strength=strength)
        return out

    def _fault_fires(self, seed: int) -> bool:
        if self.fault_seed is not None and seed != self.fault_seed:
            return False
        if self.fault_device is not None and os.environ.get("CUDA_VISIBLE_DEVICES") != self.fault_device:
            return False
        if self.fault_once_dir is None:
            return True
        folder = Path(self.fault_once_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(self.fault_limit):
            try:
                # O_EXCL makes the claim atomic across processes and nodes sharing the folder.
                os.close(os.open(folder / f"fault-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return True
            except FileExistsError:
                continue
        return False


def _defect(params: Mapping[str, ParamValue], seed: int) -> tuple[str, float] | None:
    """The (defect, strength) the shot's params (typed by the registry) ask for on this seed, or None."""
    name = params.get("defect")
    if name is None:
        return None
    given = params.get("defect_strength")
    strength = float(given) if isinstance(given, (int, float)) else DEFAULT_STRENGTH[str(name)]
    check_defect(str(name), strength)
    seeds = params.get("defect_seeds")
    if isinstance(seeds, tuple) and seed not in seeds:
        return None
    return str(name), strength
