"""Settings: what each backend is built with comes from its registry entry, never from its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.settings import Settings
from tooncrafter_model.backend import BACKENDS, BackendSpec, _factory


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
