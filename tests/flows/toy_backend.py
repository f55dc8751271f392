"""A toy backend, as a studio would add one: this module plus one registry entry (see test_new_backend.py).

Each in-between is a seeded dither: every `grain`-pixel block shows keyframe B where a per-block random
number lies below t, keyframe A elsewhere. No model, no weights; its pixels depend on the seed and grain.
"""

from __future__ import annotations

import numpy as np

from tooncrafter_model.backend import Interpolator, Request
from tooncrafter_model.frames import Frame, Frames


def dither(a: Frame, b: Frame, t: float, seed: int, grain: int) -> Frame:
    """The toy's in-between of a and b at time t."""
    h, w = a.shape[:2]
    blocks = np.random.default_rng(seed).random((-(-h // grain), -(-w // grain)))
    take_b = np.kron(blocks < t, np.ones((grain, grain), bool))[:h, :w]
    return np.where(take_b[..., None], b, a)


class ToyBackend(Interpolator):
    name = "toy"

    def render(self, request: Request) -> Frames:
        grain = int(request.params.get("grain", 4))
        out = Frames(meta={"backend": self.name, "grain": grain})
        for i, t in enumerate(request.times, 1):
            out.append(dither(request.frame_a, request.frame_b, t, request.seed, grain))
            request.step(i, t)
        return out
