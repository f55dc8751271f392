"""The parity adapter on the other reduced configs the harness's probe accepts (besides `parity_tiny`): each
builds from the reference-style config dict alone, loads its seeded weights strictly, and runs every stage
at the right shapes with finite numbers. No golden file exists for these; the T8 and T16 files hold the
numerics, these hold that nothing is tied to one shape of the family."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import torch

from tooncrafter_model.config import CLIP_ARCHS, CLIPConfig, from_yaml
from tooncrafter_model.ddim import SCHEDULE_BUFFERS
from tooncrafter_model.parity import Adapter
from tooncrafter_model.pipeline import build_model

Edit = Callable[[dict[str, Any]], None]


def _p(cfg: dict[str, Any], *path: str) -> dict[str, Any]:
    d = cfg["params"]
    for key in path:
        d = d[key]["params"] if key.endswith("_config") else d[key]
    return d


def frames(t: int) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        _p(cfg, "unet_config")["temporal_length"] = t
        _p(cfg, "image_proj_stage_config")["video_length"] = t
    return edit


def image(h: int, w: int) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["params"]["image_size"] = [h // 8, w // 8]
        _p(cfg, "first_stage_config", "ddconfig")["resolution"] = h
    return edit


def unet(**values: Any) -> Edit:
    return lambda cfg: _p(cfg, "unet_config").update(values)


def vae(**values: Any) -> Edit:
    return lambda cfg: _p(cfg, "first_stage_config", "ddconfig").update(values)


TINY = CLIP_ARCHS["tc-tiny"]
# name -> (config edit, the OpenCLIP sizes the weights have, frames the clip has)
VARIANTS: dict[str, tuple[Edit, CLIPConfig, int]] = {
    "six_frames": (frames(6), TINY, 6),
    "non_square_64x96": (image(64, 96), TINY, 8),
    "unet_64_channels_32_wide_heads": (unet(model_channels=64, num_head_channels=32), TINY, 8),
    "unet_one_res_block": (unet(num_res_blocks=1), TINY, 8),
    "attention_at_one_level": (unet(attention_resolutions=[1]), TINY, 8),
    "temporal_length_16_clip_of_8": (unet(temporal_length=16), TINY, 8),
    "vae_one_res_block": (vae(num_res_blocks=1), TINY, 8),
    "one_text_layer": (lambda cfg: None, replace(TINY, text=replace(TINY.text, layers=1)), 8),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_adapter_runs_every_stage_of_a_reduced_variant(name: str, golden_t8: dict, seeded_weights) -> None:
    edit, clip, t = VARIANTS[name]
    cfg = copy.deepcopy(golden_t8["cfg"])
    edit(cfg)
    shapes = {k: tuple(v.shape) for k, v in build_model(from_yaml(cfg, clip=clip), device="meta").state_dict().items()
              if k not in SCHEDULE_BUFFERS}
    ad = Adapter(cfg, seeded_weights(shapes, 7))
    assert ad.config.clip == clip and ad.config.frames == t
    assert {k: v for k, v in ad.state_dict_keys().items() if k not in SCHEDULE_BUFFERS} == shapes

    h, w = (8 * n for n in cfg["params"]["image_size"])
    g = torch.Generator().manual_seed(1)
    videos = torch.rand(1, 3, t, h, w, generator=g) * 2 - 1
    text = ad.text(["a cat", ""])
    proj = ad.image_proj(ad.image_embed(videos[:, :, 0]))
    assert text.shape == (2, 77, 32) and proj.shape == (1, 16 * t, 32)
    mean, logvar, hidden = ad.vae_encode(videos[0].transpose(0, 1))
    assert mean.shape == logvar.shape == (t, 4, h // 8, w // 8) and len(hidden) == 5
    z = 0.18215 * mean.transpose(0, 1)[None]
    refs = [torch.stack([x[0], x[-1]], 1)[None] for x in hidden]
    assert ad.vae_decode(z, refs).shape == (1, 3, t, h, w)
    context = torch.cat([text[:1], proj], 1)
    v = ad.unet(torch.randn(1, 4, t, h // 8, w // 8, generator=g), torch.tensor([517]), z, context, torch.tensor([10]))
    assert v.shape == (1, 4, t, h // 8, w // 8)
    noises = {"vae": torch.randn(t, 4, h // 8, w // 8, generator=g),
              "x_T": torch.randn(1, 4, t, h // 8, w // 8, generator=g),
              "steps": [torch.randn(1, 4, t, h // 8, w // 8, generator=g) for _ in range(2)]}
    out = ad.interpolate(videos, ["a cat"], 2, 1.0, 7.5, 0.7, 10, noises)
    assert out.shape == (1, 3, t, h, w) and bool(torch.isfinite(out).all())
