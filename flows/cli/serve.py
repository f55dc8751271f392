"""`toonfarm watch` and `toonfarm serve`: re-render on keyframe changes, nightly deployments."""

from __future__ import annotations

import typer

app = typer.Typer()
