"""Frames as the backends see them: HxWx3 uint8 RGB numpy arrays, identified by their pixels."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tooncrafter_model.store import atomic_write

Frame = np.ndarray  # HxWx3, uint8, RGB


class Frames(list[Frame]):
    """The frames a backend returns, plus what it did to make them (padding, steps, dtype...)."""

    def __init__(self, frames: list[Frame] | None = None, meta: dict[str, object] | None = None) -> None:
        super().__init__(frames or [])
        self.meta: dict[str, object] = dict(meta or {})


def check_frame(frame: object, what: str = "frame") -> Frame:
    """Return `frame` if it is an HxWx3 uint8 array, else raise ValueError naming `what`."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{what} must be an HxWx3 uint8 RGB array, got {got}")
    return frame


def pixel_hash(frame: Frame) -> str:
    """sha256 of the decoded pixels and their shape: the identity of a drawing, whatever file holds it."""
    frame = np.ascontiguousarray(check_frame(frame))
    h = hashlib.sha256(f"{frame.shape[0]}x{frame.shape[1]}x3:".encode())
    h.update(frame.tobytes())
    return h.hexdigest()


def read_frame(path: str | os.PathLike[str]) -> Frame:
    """Read an image file as RGB uint8; raises ValueError naming the file when it is missing or corrupt."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: image file not found")
    data = np.fromfile(p, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"{p}: not a readable image (corrupt or unsupported format)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_frame(path: str | os.PathLike[str], frame: Frame) -> Path:
    """Write `frame` as PNG atomically (temp file in the same folder, then rename)."""
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(check_frame(frame)[:, :, ::-1]))
    if not ok:
        raise ValueError(f"{p}: PNG encoding failed")
    with atomic_write(p) as f:
        f.write(buf.tobytes())
    return p
