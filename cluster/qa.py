"""Cheap checks on a backend's output before it is published: what can go wrong with uint8 frames.

NaN cannot survive into uint8, so the backends raise on non-finite values themselves; what is left
to catch here is the wrong number or size of frames, all-black frames (a failed decode, an empty
latent) and frames that are a copy of a keyframe although the keyframes differ (a backend that
silently fell back to holding a drawing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tooncrafter_model.frames import Frame


def qa_problems(frame_a: Frame, frame_b: Frame, times: Sequence[float], frames: Sequence[Frame]) -> list[str]:
    """Return one line per problem found in `frames` (empty when the output looks sane)."""
    if len(frames) != len(times):
        return [f"expected {len(times)} frames, got {len(frames)}"]
    problems: list[str] = []
    keys_black = not frame_a.any() and not frame_b.any()
    # Largest change any pixel makes from A to B: a cross-fade at time t moves it t * spread levels
    # from A, so an exact copy of A (or B) is only suspicious when that is at least one level.
    spread = int(np.abs(frame_a.astype(np.int16) - frame_b.astype(np.int16)).max())
    for i, (t, frame) in enumerate(zip(times, frames, strict=True)):
        name = f"frame {i + 1:04d} (t={float(t):g})"
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != frame_a.shape:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            problems.append(f"{name}: expected uint8 {frame_a.shape}, got {got}")
            continue
        if not keys_black and not frame.any():
            problems.append(f"{name}: all black")
        elif spread * float(t) >= 1.0 and np.array_equal(frame, frame_a):
            problems.append(f"{name}: identical to keyframe A")
        elif spread * (1.0 - float(t)) >= 1.0 and np.array_equal(frame, frame_b):
            problems.append(f"{name}: identical to keyframe B")
    return problems
