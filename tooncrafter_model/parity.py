"""The parity-harness adapter: every stage of our implementation behind one small API.

`Adapter(cfg, state_dict)` takes the reference-style config dict and a parameters-only state dict, builds our
model, computes the schedule buffers itself and loads strictly. All methods run float32 on CPU with B = 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from tooncrafter_model.checkpoint import check_keys
from tooncrafter_model.config import CLIP_ARCHS, CLIPConfig, TextTowerConfig, VisionTowerConfig, from_yaml
from tooncrafter_model.ddim import SCHEDULE_BUFFERS
from tooncrafter_model.pipeline import SamplingNoise, ToonCrafterPipeline, build_model
from tooncrafter_model.tokenizer import BPETokenizer
from tooncrafter_model.vae import split_posterior

_TEXT = "cond_stage_model.model."
_VISUAL = "embedder.model.visual."


def infer_clip(cfg: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> CLIPConfig:
    """The OpenCLIP tower sizes read off the weights; head counts from the arch `cfg` names.

    Widths, layer counts, MLP ratios, patch and image size come from tensor shapes, so a reduced config that
    keeps an arch's name but changes its sizes (one text layer, say) still loads. Head counts cannot be read
    off: they come from the named arch where its width matches, else from open_clip's defaults (8 text heads,
    64-wide vision heads) where they divide the width.
    """
    params = cfg.get("params", {}).get("cond_stage_config", {}).get("params") or {}
    arch = params.get("arch", "ViT-H-14")
    known = CLIP_ARCHS.get(arch)
    text_blocks, visual_blocks = _TEXT + "transformer.resblocks.", _VISUAL + "transformer.resblocks."

    def layers(prefix: str) -> int:
        return len({k[len(prefix) :].split(".")[0] for k in state_dict if k.startswith(prefix)})

    def mlp_ratio(prefix: str, width: int, default: float) -> float:
        hidden = state_dict.get(prefix + "0.mlp.c_fc.weight")
        return hidden.shape[0] / width if hidden is not None else default

    tw = state_dict[_TEXT + "positional_embedding"].shape[1]
    conv = state_dict[_VISUAL + "conv1.weight"]
    vw, patch = conv.shape[0], conv.shape[-1]
    grid = int(round((state_dict[_VISUAL + "positional_embedding"].shape[0] - 1) ** 0.5))
    text_heads = known.text.heads if known and known.text.width == tw else 8 if tw % 8 == 0 else 1
    head_width = known.vision.head_width if known and known.vision.width == vw else 64 if vw % 64 == 0 else vw
    inferred = CLIPConfig(
        arch=arch,
        embed_dim=state_dict[_TEXT + "text_projection"].shape[1],
        text=TextTowerConfig(
            width=tw, heads=text_heads, layers=layers(text_blocks),
            context_length=state_dict[_TEXT + "positional_embedding"].shape[0],
            vocab_size=state_dict[_TEXT + "token_embedding.weight"].shape[0],
            mlp_ratio=mlp_ratio(text_blocks, tw, known.text.mlp_ratio if known else 4.0),
        ),
        vision=VisionTowerConfig(
            image_size=grid * patch, patch_size=patch, width=vw, layers=layers(visual_blocks),
            head_width=head_width, mlp_ratio=mlp_ratio(visual_blocks, vw, known.vision.mlp_ratio if known else 4.0),
        ),
    )
    return inferred


class Adapter:
    """Our ToonCrafter, stage by stage, for `parity/compare.py`."""

    def __init__(
        self, cfg: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], tokenizer: BPETokenizer | None = None
    ) -> None:
        config = from_yaml(cfg, clip=infer_clip(cfg, state_dict))
        self.model = build_model(config, device="cpu")
        own = self.model.state_dict()
        params = {k: tuple(v.shape) for k, v in own.items() if k not in SCHEDULE_BUFFERS}
        check_keys("parity state dict", params, state_dict)
        full = dict(state_dict)
        full.update({k: own[k] for k in SCHEDULE_BUFFERS})  # our own buffers, compared separately
        self.model.load_state_dict(full, strict=True)
        self.pipe = ToonCrafterPipeline(self.model, tokenizer)
        self.config = config

    def state_dict_keys(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.model.state_dict().items()}

    def schedule(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self.model, k).clone() for k in SCHEDULE_BUFFERS}

    def ddim(self, steps: int, eta: float, spacing: str) -> dict[str, torch.Tensor]:
        return self.pipe.schedule.table(steps, eta, spacing)

    @torch.no_grad()
    def text(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.pipe.encode_text(prompts)

    @torch.no_grad()
    def image_embed(self, img: torch.Tensor) -> torch.Tensor:
        return self.model.embedder(img)

    @torch.no_grad()
    def image_proj(self, emb: torch.Tensor) -> torch.Tensor:
        return self.model.image_proj_model(emb)

    @torch.no_grad()
    def vae_encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        moments, hidden = self.model.first_stage_model.encode(frames)
        mean, logvar = split_posterior(moments)
        return mean, logvar, hidden

    @torch.no_grad()
    def vae_decode(self, z: torch.Tensor, ref_context: list[torch.Tensor]) -> torch.Tensor:
        return self.model.first_stage_model.decode(z, ref_context, self.pipe.decode_chunk)

    @torch.no_grad()
    def unet(
        self, x: torch.Tensor, t: torch.Tensor, c_concat: torch.Tensor, context: torch.Tensor, fs: torch.Tensor | None
    ) -> torch.Tensor:
        return self.model.model(x, t, c_concat, context, fs)

    @torch.no_grad()
    def interpolate(
        self, videos: torch.Tensor, prompts: Sequence[str], steps: int, eta: float, cfg: float, rescale: float,
        fs: int, noises: Mapping[str, Any],
    ) -> torch.Tensor:
        s = self.pipe.settings(steps=steps, eta=eta, guidance_scale=cfg, guidance_rescale=rescale, fs=fs)
        noise = SamplingNoise(noises["vae"], noises["x_T"], tuple(noises["steps"]))
        return self.pipe.generate(videos, prompts[0], s, noise)
