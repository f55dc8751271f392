"""Strict checkpoint loading: .ckpt -> .safetensors round trip at the tiny config, and every way a file can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tooncrafter_model.checkpoint import CheckpointError, convert, load_strict, official_to_toonfarm, read_state_dict
from tooncrafter_model.config import ToonCrafterConfig
from tooncrafter_model.pipeline import build_model

TINY = ToonCrafterConfig.parity_tiny()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory, seeded_weights) -> tuple[Path, dict[str, torch.Tensor]]:
    """A Lightning-style checkpoint ({"state_dict": ...}) of the tiny model with seeded weights."""
    model = build_model(TINY)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd.update(seeded_weights({k: tuple(v.shape) for k, v in model.named_parameters()}, seed=7))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": sd, "global_step": 1}, path)
    return path, sd


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ckpt_to_safetensors_round_trip_loads_strictly(tiny_ckpt, tmp_path: Path) -> None:
    path, sd = tiny_ckpt
    out = tmp_path / "tiny.safetensors"
    assert convert(path, out, TINY) == len(sd)
    assert not list(tmp_path.glob("*.part"))
    for source in (path, out):
        model = load_strict(build_model(TINY), source)
        assert _same(model.state_dict(), sd)
    meta = load_strict(build_model(TINY, device="meta"), out)  # assign: tensors land on the CPU
    assert _same({k: v for k, v in meta.state_dict().items()}, sd)


def test_convert_checks_against_the_official_model_by_default(tiny_ckpt, tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    with pytest.raises(CheckpointError, match=r"tiny\.ckpt: does not match the model \(2668 keys\)"):
        convert(path, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", r"missing 1 \(e\.g\. model\.diffusion_model\.out\.2\.bias\)"),
        ("extra", r"unexpected 1 \(e\.g\. model\.diffusion_model\.surprise\)"),
        ("shape", r"mis-shaped 1 \(e\.g\. image_proj_model\.latents \(1, 127, 64\) != model \(1, 128, 64\)\)"),
    ],
)
def test_a_mismatched_file_is_refused_with_one_line(tiny_ckpt, tmp_path: Path, change: str, message: str) -> None:
    _, sd = tiny_ckpt
    sd = dict(sd)
    if change == "drop":
        del sd["model.diffusion_model.out.2.bias"]
    elif change == "extra":
        sd["model.diffusion_model.surprise"] = torch.zeros(1)
    else:
        sd["image_proj_model.latents"] = torch.zeros(1, 127, 64)
    bad = tmp_path / "bad.ckpt"
    torch.save(sd, bad)
    model = build_model(TINY)
    before = model.state_dict()["image_proj_model.latents"].clone()
    with pytest.raises(CheckpointError, match=message) as err:
        load_strict(model, bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert torch.equal(model.state_dict()["image_proj_model.latents"], before)  # nothing half-loaded


class _Payload:
    """Unpickling this would run os.system and create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_pickle_that_carries_code_is_refused_and_never_run(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    payload = {"state_dict": {"x": torch.zeros(1)}, "payload": _Payload(marker)}
    torch.save(payload, evil, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match=r"evil\.ckpt: refused, the pickle holds more than tensors") as err:
        load_strict(build_model(TINY), evil)
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["junk.ckpt", "junk.safetensors", "empty.ckpt"])
def test_a_corrupt_file_names_itself(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=rf"{name}: not a readable (torch|safetensors)") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_state_dict(tmp_path / "absent.ckpt")


def test_a_legacy_torch_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save({"a": torch.arange(3.0)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(read_state_dict(path)["a"], torch.arange(3.0))


def test_deepspeed_layout_is_unwrapped(tiny_ckpt, tmp_path: Path) -> None:
    _, sd = tiny_ckpt
    path = tmp_path / "ds.ckpt"
    torch.save({"module": {f"_forward_module.{k}": v for k, v in sd.items()}, "ds_version": "0.9"}, path)
    assert _same(load_strict(build_model(TINY), path).state_dict(), sd)


def test_non_tensor_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1), "b": 3}}, path)
    with pytest.raises(CheckpointError, match=r"mixed\.ckpt: 1 entries are not named tensors"):
        read_state_dict(path)


def test_old_fs_embedding_name_is_renamed() -> None:
    old = {"model.diffusion_model.framestride_embed.0.weight": torch.ones(1), "betas": torch.zeros(1)}
    assert set(official_to_toonfarm(old)) == {"model.diffusion_model.fps_embedding.0.weight", "betas"}
