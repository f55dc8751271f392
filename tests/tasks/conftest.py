"""Helpers for the ingest and detect tests: shot lists and videos written into the test's own folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from tasks.shotlist import ShotList, load_shotlist
from tooncrafter_model.frames import Frame


@pytest.fixture
def write_shotlist(tmp_path: Path) -> Callable[..., ShotList]:
    """Write `shots` (and optional `defaults`) as <tmp>/shots.yaml and load it."""

    def write(shots: list[dict[str, Any]], defaults: dict[str, Any] | None = None, **kwargs: Any) -> ShotList:
        doc: dict[str, Any] = {"shots": shots}
        if defaults is not None:
            doc["defaults"] = defaults
        path = tmp_path / "shots.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return load_shotlist(path, **kwargs)

    return write


def _decode_all(path: Path) -> list[Frame]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cap.release()
    return frames


@pytest.fixture
def decode_all() -> Callable[[Path], list[Frame]]:
    """Every frame of a video as RGB, decoded by OpenCV directly (not through the code under test)."""
    return _decode_all
