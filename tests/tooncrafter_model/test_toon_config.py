"""The official model's structure (meta device) against the reference state dict, and the YAML edge."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

import tooncrafter_model
from tooncrafter_model import build_model
from tooncrafter_model.config import ConfigError, ToonCrafterConfig, from_yaml

# state-dict prefix -> (keys, parameters) of the official checkpoint, counted from its keys
COMPONENTS = {
    "model.diffusion_model.": (1516, 1_438_854_980),
    "first_stage_model.encoder.|first_stage_model.quant_conv.|first_stage_model.post_quant_conv.": (110, 34_163_684),
    "first_stage_model.decoder.": (286, 65_778_223),
    "cond_stage_model.model.": (294, 354_032_641),
    "embedder.model.": (398, 683_800_065),
    "image_proj_model.": (51, 48_787_456),
}


def read_keys_tsv(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    out = {}
    for r in body:
        shape = () if r[col["shape"]] == "scalar" else tuple(int(x) for x in r[col["shape"]].split("x"))
        out[r[col["key"]]] = (shape, r[col["dtype"]])
    return out


@pytest.fixture(scope="module")
def official_meta(fixtures_dir: Path):
    return build_model(fixtures_dir / "inference_512_v1.0.yaml", device="meta")


def test_official_yaml_builds_exactly_the_reference_state_dict(official_meta, fixtures_dir: Path) -> None:
    expected = read_keys_tsv(fixtures_dir / "KEYS.tsv")
    assert len(expected) == 2668
    got = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in official_meta.state_dict().items()}
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if v != expected[k]} == {}


def test_parameter_count_per_component_matches_the_spec(official_meta) -> None:
    counts: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    for name, tensor in official_meta.state_dict().items():
        for component, _ in COMPONENTS.items():
            if name.startswith(tuple(component.split("|"))):
                counts[component] += tensor.numel()
                keys[component] += 1
                break
        else:
            counts["schedule"] += tensor.numel()
            keys["schedule"] += 1
    for component, (n_keys, n_params) in COMPONENTS.items():
        assert (keys[component], counts[component]) == (n_keys, n_params), component
    assert (keys["schedule"], counts["schedule"]) == (13, 13_400)
    assert sum(p.numel() for p in official_meta.parameters()) == 2_625_417_049  # buffers not included


def test_build_model_is_the_package_export() -> None:
    from tooncrafter_model import pipeline

    assert "build_model" in tooncrafter_model.__all__
    assert tooncrafter_model.build_model is pipeline.build_model


def test_every_entry_point_gives_the_same_config(fixtures_dir: Path) -> None:
    path = fixtures_dir / "inference_512_v1.0.yaml"
    data = yaml.safe_load(path.read_text())
    assert from_yaml(path) == from_yaml(str(path)) == from_yaml(data) == from_yaml(data["model"])
    assert from_yaml(path) == ToonCrafterConfig.official_512()


def test_parity_tiny_is_the_harness_config(golden_t8: dict) -> None:
    tiny = ToonCrafterConfig.parity_tiny()
    assert replace(from_yaml(golden_t8["cfg"]), sampler=tiny.sampler) == tiny
    model = build_model(tiny, device="meta")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: tuple(v) for k, v in golden_t8["state_dict_keys"].items()
    }


def test_built_model_is_in_eval_mode_without_grads() -> None:
    model = build_model(ToonCrafterConfig.parity_tiny(), device="meta")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.betas.is_meta


def _edit(data: dict, dotted: str, value: object) -> dict:
    node = data["model"]
    *path, last = dotted.split(".")
    for key in path:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("params.unet_config.params.temporal_selfatt_only", False, r"unet_config\.temporal_selfatt_only=False is not supported"),
        ("params.parameterization", "eps", r"params\.parameterization='eps' is not supported"),
        ("params.unet_config.params.model_channels", None, r"missing field 'model_channels'"),
        ("params.first_stage_config.params.ddconfig.ch_mult", "wide", r"field 'ch_mult' must be a list"),
        ("params.cond_stage_config.params", {"arch": "ViT-Q-99"}, r"unknown OpenCLIP arch 'ViT-Q-99'"),
        ("params.image_proj_stage_config.params.output_dim", 768, r"resampler\.output_dim.*must agree"),
        ("params.unet_config.params.model_channels", 48, r"multiples of 32"),
    ],
)
def test_bad_yaml_fields_are_named_in_one_line(tmp_path: Path, fixtures_dir: Path, dotted: str, value: object, message: str) -> None:
    data = _edit(yaml.safe_load((fixtures_dir / "inference_512_v1.0.yaml").read_text()), dotted, value)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message) as err:
        build_model(path, device="meta")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}: ")


def test_unreadable_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match=r"broken\.yaml: cannot read YAML"):
        from_yaml(path)
    with pytest.raises(ConfigError, match=r"missing section 'params'"):
        from_yaml({"model": {"target": "x"}})

