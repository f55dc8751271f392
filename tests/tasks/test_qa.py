"""The quality policy's choices, one step at a time: what is tried after a flagged render, which try a pair
keeps, and that a re-run would make the same choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.qa import Decision, QAPolicy, Retake, Tried, next_step, retry_seed
from tasks.settings import Settings
from tasks.shotlist import load_shotlist
from tooncrafter_model.quality import QAThresholds

KEY = "ab" * 32
FLAG = ("frame 0001 (t=0.5): tone 8.26 > 1",)


def _tried(key: str, severity: float, backend: str = "toon", seed: int = 7) -> Tried:
    return Tried(key, backend, seed, FLAG if severity > 1 else (), severity)


def _policy(on_fail: str, retries: int = 2, fallback: str = "rife") -> QAPolicy:
    return QAPolicy(on_fail, retries, fallback, QAThresholds())


def test_a_clean_first_try_needs_no_decision() -> None:
    for on_fail in ("flag", "retry", "fallback"):
        assert next_step(_policy(on_fail), "toon", 7, [_tried(KEY, 0.4)]) is None


def test_flag_keeps_the_flagged_pair() -> None:
    decision = next_step(_policy("flag"), "toon", 7, [_tried(KEY, 3.0)])
    assert isinstance(decision, Decision) and decision.outcome == "flagged" and decision.accepted == 0
    assert decision.summary() == "kept (qa.on_fail: flag); first try flagged: frame 0001 (t=0.5): tone 8.26 > 1"


def test_retry_tries_derived_seeds_until_one_is_clean() -> None:
    policy = _policy("retry", retries=3)
    tried = [_tried(KEY, 3.0)]
    step = next_step(policy, "toon", 7, tried)
    assert step == Retake("toon", retry_seed(KEY, 1))
    tried.append(_tried("cd" * 32, 2.0, seed=retry_seed(KEY, 1)))
    assert next_step(policy, "toon", 7, tried) == Retake("toon", retry_seed(KEY, 2))
    tried.append(_tried("ef" * 32, 0.5, seed=retry_seed(KEY, 2)))
    decision = next_step(policy, "toon", 7, tried)
    assert isinstance(decision, Decision) and (decision.outcome, decision.accepted) == ("retried", 2)
    assert decision.chosen.render_key == "ef" * 32
    assert decision.summary().startswith(f"try 3 of 3 (seed {retry_seed(KEY, 2)}) came out clean; first try flagged: ")


def test_when_every_try_is_flagged_the_least_flagged_is_kept() -> None:
    tried = [_tried(KEY, 3.0), _tried("cd" * 32, 1.5), _tried("ef" * 32, 2.0)]
    decision = next_step(_policy("retry", retries=2), "toon", 7, tried)
    assert isinstance(decision, Decision) and (decision.outcome, decision.accepted) == ("flagged", 1)
    assert decision.summary().startswith("every try was flagged: kept try 2 of 3 (toon, seed 7)")
    same = [_tried(KEY, 2.0), _tried("cd" * 32, 2.0)]
    tie = next_step(_policy("retry", retries=1), "toon", 7, same)
    assert isinstance(tie, Decision) and tie.accepted == 0  # of equals, the first: the shot's own render


def test_fallback_renders_once_with_the_other_backend_and_the_shots_seed() -> None:
    policy = _policy("fallback", fallback="rife")
    assert next_step(policy, "toon", 7, [_tried(KEY, 3.0)]) == Retake("rife", 7)
    fell = next_step(policy, "toon", 7, [_tried(KEY, 3.0), _tried("cd" * 32, 0.2, backend="rife")])
    assert isinstance(fell, Decision) and fell.outcome == "fell-back"
    assert fell.summary().startswith("rife came out clean")
    kept = next_step(policy, "toon", 7, [_tried(KEY, 3.0), _tried("cd" * 32, 4.0, backend="rife")])
    assert isinstance(kept, Decision) and (kept.outcome, kept.chosen.backend) == ("flagged", "toon")


def test_retry_seeds_are_the_same_on_every_run_and_differ_per_pair_and_try() -> None:
    seeds = {retry_seed(key, n) for key in (KEY, "cd" * 32) for n in (1, 2, 3)}
    assert len(seeds) == 6 and all(0 <= s < 2**31 for s in seeds)
    assert retry_seed(KEY, 1) == retry_seed(KEY, 1)


def test_a_decisions_reason_is_one_line_however_many_frames_are_flagged() -> None:
    flags = tuple(f"frame {i:04d} (t=0.5): ghost 0.3 > 0.1" for i in range(1, 11))
    decision = Decision(_policy("flag"), (Tried(KEY, "toon", 7, flags, 3.0),), 0)
    assert decision.reason.endswith("; and 6 more") and decision.reason.count("ghost") == 4
    assert tuple(decision.as_json()["tries"][0]["flags"]) == flags  # every flag is kept in the record


def test_the_policy_of_a_shot_and_its_identity(tmp_path: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(
        "defaults: {fps: 24, qa: {retries: 5, thresholds: {ghost: 0.2}}}\n"
        "shots:\n  - {code: a, source: a.mp4}\n  - {code: b, source: b.mp4, qa: {on_fail: retry}}\n"
    )
    a, b = load_shotlist(path).shots
    settings = Settings(qa_thresholds=QAThresholds(tone=2.0))
    flag, retry = QAPolicy.of(a, settings), QAPolicy.of(b, settings)
    assert flag.thresholds == QAThresholds(tone=2.0, ghost=0.2) == retry.thresholds  # the shot's over the settings'
    # retries and a fallback mean nothing to flag
    assert flag.as_json() == {"on_fail": "flag", "thresholds": {**vars(flag.thresholds)}}
    assert retry.as_json()["retries"] == 5 and "fallback" not in retry.as_json()
    assert flag.digest != retry.digest and flag.digest == QAPolicy("flag", 9, "toon", flag.thresholds).digest
    with pytest.raises(ValueError):
        QAPolicy.of(a, Settings(qa_thresholds={"ghost": 0}))
