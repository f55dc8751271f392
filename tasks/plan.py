"""Plan: from a shot list to each shot's keyframes and pairs, one shot's bad media never stopping another."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tasks.detect import DetectConfig, MediaError, ShotPlan, detect_shot
from tasks.settings import Limits
from tasks.shotlist import load_shotlist


def plan_shots(
    shotlist: str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    allow_outside_root: bool = False,
    defaults: Mapping[str, Any] | None = None,
    config: DetectConfig = DetectConfig(),
    limits: Limits = Limits(),
) -> tuple[list[ShotPlan], list[tuple[str, str]]]:
    """Detect every shot of the list in render order; returns the plans and (shot id, error) failures.

    A malformed shot list raises ShotListError: nothing in it can be trusted.
    """
    shots = load_shotlist(shotlist, allow_outside_root=allow_outside_root, defaults=defaults, limits=limits)
    plans: list[ShotPlan] = []
    failures: list[tuple[str, str]] = []
    for shot in shots.ordered():
        try:
            plans.append(detect_shot(shot, store, config))
        except MediaError as exc:
            failures.append((shot.id, str(exc)))
    return plans, failures
