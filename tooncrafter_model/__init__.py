"""Interpolation models: ToonCrafter (written here, loads the official checkpoint), RIFE, and their
common interface."""

from typing import Any

from tooncrafter_model.backend import BackendIdentity, Interpolator, load_backend
from tooncrafter_model.frames import Frame, Frames, pixel_hash

__all__ = ["BackendIdentity", "Frame", "Frames", "Interpolator", "build_model", "load_backend", "pixel_hash"]


def __getattr__(name: str) -> Any:
    # torch is imported only when a model is built: a crossfade or simulated worker starts in a blink.
    if name == "build_model":
        from tooncrafter_model.pipeline import build_model

        return build_model
    raise AttributeError(f"module 'tooncrafter_model' has no attribute {name!r}")
