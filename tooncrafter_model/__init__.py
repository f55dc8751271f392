"""Interpolation models: ToonCrafter (written here, loads the official checkpoint), RIFE, and their
common interface."""

from tooncrafter_model.backend import BackendIdentity, Interpolator, load_backend
from tooncrafter_model.frames import Frame, Frames, pixel_hash
from tooncrafter_model.pipeline import build_model

__all__ = ["BackendIdentity", "Frame", "Frames", "Interpolator", "build_model", "load_backend", "pixel_hash"]
