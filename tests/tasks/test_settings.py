"""Settings: what each backend is built with comes from its registry entry, never from its name; the QA
thresholds are settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.settings import Settings
from tooncrafter_model.backend import BACKENDS, BackendSpec, _factory
from tooncrafter_model.quality import QAThresholds


def test_backends_are_built_with_what_their_registry_entry_names(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    settings = Settings(
        output_root=tmp_path, device="cuda:1", model_cache=tmp_path / "cache", toon_checkpoint=ckpt,
        backend_options={"toon": {"fit": "crop"}, "crossfade": {}},
    )
    assert settings.backend_settings("rife") == {"device": "cuda:1", "cache_dir": str(tmp_path / "cache")}
    assert settings.backend_settings("toon") == {
        "device": "cuda:1", "cache_dir": str(tmp_path / "cache"), "checkpoint": str(ckpt), "dtype": "fp32", "fit": "crop",
    }
    assert settings.backend_settings("crossfade") == {}
    assert settings.backend_settings("simulated-gpu") == {}


def test_a_new_entry_needs_no_settings_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(BACKENDS, "toy", BackendSpec("toy:Toy", settings={"cache": "model_cache"}, device=True))
    settings = Settings(output_root=tmp_path, model_cache=tmp_path / "m", backend_options={"toy": {"grain": 2}})
    assert settings.backend_settings("toy") == {"device": "cpu", "cache": str(tmp_path / "m"), "grain": 2}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_registry_entries_are_consistent(name: str) -> None:
    spec = BACKENDS[name]
    assert set(spec.settings.values()) <= set(Settings.model_fields), spec.settings
    assert _factory(spec).name == name  # the class reports the name it is registered under


def test_qa_thresholds_default_to_the_measured_ones_and_are_set_like_any_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().qa_thresholds == QAThresholds()  # bench/quality.py's choice (ARCHITECTURE.md)
    monkeypatch.setenv("TOONFARM_QA_THRESHOLDS__GHOST", "0.15")
    assert Settings().qa_thresholds == QAThresholds(ghost=0.15)
    with pytest.raises(ValidationError, match="QAThresholds.tone: must be a number > 0"):
        Settings(qa_thresholds={"tone": 0})


def test_dead_after_s_leaves_a_live_run_room_to_miss_beats() -> None:
    """A live run's beats can be db_retry_s apart: dead_after_s must outlast that and three beats."""
    s = Settings()
    assert (s.heartbeat_s, s.dead_after_s) == (30, 600)
    assert Settings(heartbeat_s=10, db_retry_s=0, dead_after_s=30).dead_after_s == 30
    with pytest.raises(ValidationError) as refused:
        Settings(dead_after_s=149)
    (err,) = refused.value.errors()
    assert err["loc"] == ("dead_after_s",)
    assert err["msg"] == ("Value error, 149 s would take a live run for dead: at least 3 heartbeats (heartbeat_s 30) "
                          "plus db_retry_s (60), 150 s")  # fmt: skip
