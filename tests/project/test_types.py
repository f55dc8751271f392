"""`mypy --strict` on every package (the model relaxes torch's opaque types; see pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mypy_strict() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "tasks", "flows", "cluster", "shot_db", "tooncrafter_model"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-5000:]
