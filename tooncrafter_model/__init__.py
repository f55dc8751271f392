"""Interpolation models: ToonCrafter (written here, loads the official checkpoint), RIFE, and their
common interface."""

from tooncrafter_model.backend import BackendIdentity, Interpolator, load_backend
from tooncrafter_model.frames import Frame, Frames, pixel_hash

__all__ = ["BackendIdentity", "Frame", "Frames", "Interpolator", "load_backend", "pixel_hash"]
