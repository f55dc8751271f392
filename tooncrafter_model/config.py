"""Typed, frozen configuration for ToonCrafter; `from_yaml` is the only place that reads the reference YAML.

The reference ships `inference_512_v1.0.yaml` with `target:` class paths and nested `params` dicts. We read it
once, here, into these dataclasses (ignoring `target:`), reject the flags this implementation does not support,
and nothing below this edge ever sees a dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tooncrafter_model.errors import UserError


class ConfigError(UserError):
    """A configuration file or dict names an unsupported or inconsistent setting."""


# ---------------------------------------------------------------------------------------------------
# Sub-configs
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UNetConfig:
    """The 3D denoising UNet (DynamiCrafter `UNetModel`, every temporal flag on)."""

    in_channels: int = 8  # noisy latent (4) + keyframe concat latents (4)
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_head_channels: int = 64
    transformer_depth: int = 1
    context_dim: int = 1024
    use_linear: bool = True
    temporal_length: int = 16
    default_fs: int = 24
    init_attn_heads: int = 8  # the reference hard-codes 8 heads for init_attn
    text_tokens: int = 77  # cross-attention treats the first 77 context tokens as text
    image_tokens_per_frame: int = 16  # hard-coded in the reference's per-frame context split

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.model_channels


@dataclass(frozen=True)
class VAEConfig:
    """KL-f8 autoencoder: SD encoder + ToonCrafter's dual-reference video decoder."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    in_channels: int = 3
    out_ch: int = 3
    scale_factor: float = 0.18215
    fusion_levels: tuple[int, ...] = (2, 3)  # decoder levels with reference cross-attention (hard-coded)
    fusion_heads: int = 8  # fusion attention is always 8 x 64, whatever the width
    fusion_head_dim: int = 64


@dataclass(frozen=True)
class TextTowerConfig:
    """OpenCLIP text transformer."""

    width: int = 1024
    heads: int = 16
    layers: int = 24
    context_length: int = 77
    vocab_size: int = 49408
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class VisionTowerConfig:
    """OpenCLIP ViT image tower."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1280
    layers: int = 32
    head_width: int = 80
    mlp_ratio: float = 4.0

    @property
    def heads(self) -> int:
        return self.width // self.head_width

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


@dataclass(frozen=True)
class CLIPConfig:
    """One OpenCLIP architecture, used twice: text tower (penultimate layer) and image tower (all tokens)."""

    arch: str = "ViT-H-14"
    embed_dim: int = 1024
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig)
    text_layers_skipped: int = 1  # "penultimate": the last resblock is not run


@dataclass(frozen=True)
class ResamplerConfig:
    """Perceiver resampler from image tokens to 16 learned queries per frame."""

    dim: int = 1024
    depth: int = 4
    dim_head: int = 64
    heads: int = 12
    num_queries: int = 16
    embedding_dim: int = 1280
    output_dim: int = 1024
    ff_mult: int = 4
    video_length: int | None = 16

    @property
    def total_queries(self) -> int:
        return self.num_queries * (self.video_length or 1)


@dataclass(frozen=True)
class DDIMConfig:
    """Noise schedule (zero-SNR, v-prediction, dynamic rescale) and the sampler's defaults (run.sh values)."""

    num_timesteps: int = 1000
    linear_start: float = 0.00085
    linear_end: float = 0.012
    zero_terminal_snr: bool = True
    base_scale: float = 0.7
    turning_step: int = 400
    steps: int = 50
    eta: float = 1.0
    guidance_scale: float = 7.5
    guidance_rescale: float = 0.7
    fs: int = 10
    spacing: str = "uniform_trailing"


# ---------------------------------------------------------------------------------------------------
# OpenCLIP architectures (the YAML names one by string)
# ---------------------------------------------------------------------------------------------------

CLIP_ARCHS: Mapping[str, CLIPConfig] = {
    "ViT-H-14": CLIPConfig(),
    # The parity harness's tiny tower (parity/reduced_config.py): 224 px, patch 32, tiny widths.
    "tc-tiny": CLIPConfig(
        arch="tc-tiny",
        embed_dim=32,
        text=TextTowerConfig(width=32, heads=2, layers=3),
        vision=VisionTowerConfig(image_size=224, patch_size=32, width=64, layers=2, head_width=32),
    ),
}


# ---------------------------------------------------------------------------------------------------
# The whole model
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToonCrafterConfig:
    """Everything needed to build ToonCrafter and run its sampler."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    clip: CLIPConfig = field(default_factory=CLIPConfig)
    resampler: ResamplerConfig = field(default_factory=ResamplerConfig)
    sampler: DDIMConfig = field(default_factory=DDIMConfig)
    frames: int = 16
    latent_size: tuple[int, int] = (40, 64)  # (h, w) of the latent; pixels are 8x

    @property
    def image_size(self) -> tuple[int, int]:
        return (8 * self.latent_size[0], 8 * self.latent_size[1])

    @classmethod
    def official_512(cls) -> ToonCrafterConfig:
        """The released 512 interpolation model (`inference_512_v1.0.yaml`, `scripts/run.sh`)."""
        return cls()

    @classmethod
    def parity_tiny(cls, frames: int = 8, image_hw: tuple[int, int] = (64, 64)) -> ToonCrafterConfig:
        """The parity harness's reduced config: every module type, tiny widths."""
        return cls(
            unet=UNetConfig(
                model_channels=32,
                channel_mult=(1, 2, 2),
                attention_resolutions=(2, 1),
                num_head_channels=16,
                context_dim=32,
                temporal_length=frames,
            ),
            vae=VAEConfig(ch=32, ch_mult=(1, 1, 2, 2)),
            clip=CLIP_ARCHS["tc-tiny"],
            resampler=ResamplerConfig(
                dim=64, depth=2, dim_head=16, heads=2, embedding_dim=64, output_dim=32, video_length=frames
            ),
            sampler=DDIMConfig(steps=4),
            frames=frames,
            latent_size=(image_hw[0] // 8, image_hw[1] // 8),
        )

    def validate(self) -> ToonCrafterConfig:
        """Raise ConfigError when parts disagree (the reference would fail late or silently change meaning)."""
        u, r, c = self.unet, self.resampler, self.clip
        checks = [
            (r.output_dim == u.context_dim == c.text.width, "resampler.output_dim, unet.context_dim and the "
             f"CLIP text width must agree, got {r.output_dim}, {u.context_dim}, {c.text.width}"),
            (r.embedding_dim == c.vision.width, f"resampler.embedding_dim {r.embedding_dim} != CLIP vision "
             f"width {c.vision.width}"),
            (len(self.vae.ch_mult) >= 4, f"vae.ch_mult needs 4 levels (an 8x latent), got {self.vae.ch_mult}"),
            (c.text.context_length == u.text_tokens, f"text context must be {u.text_tokens} tokens"),
        ]
        widths = [u.model_channels * m for m in u.channel_mult] + [self.vae.ch * m for m in self.vae.ch_mult]
        checks.append((all(w % 32 == 0 for w in widths), f"widths must be multiples of 32 (GroupNorm), got {widths}"))
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        return self


# ---------------------------------------------------------------------------------------------------
# Reading the reference YAML (the only dict-reading code in the package)
# ---------------------------------------------------------------------------------------------------

# Flags of the reference classes that this implementation hard-wires; any other value is refused.
_FIXED_FLAGS: dict[str, dict[str, object]] = {
    "params": {"conditioning_key": "hybrid", "parameterization": "v", "perframe_ae": True,
               "rescale_betas_zero_snr": True, "use_dynamic_rescale": True, "uncond_type": "empty_seq",
               "fps_condition_type": "fps", "channels": 4},
    "unet_config": {"temporal_conv": True, "temporal_attention": True, "temporal_selfatt_only": True,
                    "use_relative_position": False, "use_causal_attention": False, "addition_attention": True,
                    "image_cross_attention": True, "fs_condition": True, "use_scale_shift_norm": False,
                    "image_cross_attention_scale_learnable": False, "tempspatial_aware": False},
    "ddconfig": {"double_z": True, "attn_resolutions": []},
    "cond_stage_config": {"layer": "penultimate"},
}


def _section(where: str, d: Any, key: str) -> Mapping[str, Any]:
    value = d.get(key) if isinstance(d, Mapping) else None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: missing section '{key}'")
    return value


def _check_fixed(where: str, section: str, params: Mapping[str, Any]) -> None:
    for key, expected in _FIXED_FLAGS[section].items():
        if key in params and params[key] != expected:
            raise ConfigError(f"{where}: {section}.{key}={params[key]!r} is not supported (only {expected!r})")


def _pick(where: str, params: Mapping[str, Any], name: str, kind: type) -> Any:
    if name not in params:
        raise ConfigError(f"{where}: missing field '{name}'")
    value = params[name]
    if kind is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: field '{name}' must be a list, got {value!r}")
        return tuple(int(v) for v in value)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: field '{name}' must be {kind.__name__}, got {value!r}")
    return value


def from_yaml(
    source: str | os.PathLike[str] | Mapping[str, Any], *, clip: CLIPConfig | None = None
) -> ToonCrafterConfig:
    """Read the reference YAML (a path, its dict, or its `model` dict) into a ToonCrafterConfig.

    `clip` overrides the OpenCLIP architecture (needed when the YAML names an arch outside CLIP_ARCHS).
    """
    where = "config dict"
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        try:
            data = yaml.safe_load(Path(source).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{where}: cannot read YAML ({type(exc).__name__}: {exc})") from None
    else:
        data = source
    model = data.get("model", data) if isinstance(data, Mapping) else data
    p = _section(where, model, "params")
    _check_fixed(where, "params", p)
    up = _section(where, _section(where, p, "unet_config"), "params")
    _check_fixed(where, "unet_config", up)
    vp = _section(where, _section(where, p, "first_stage_config"), "params")
    dd = _section(where, vp, "ddconfig")
    _check_fixed(where, "ddconfig", dd)
    tp = _section(where, p, "cond_stage_config").get("params") or {}
    _check_fixed(where, "cond_stage_config", tp)
    ip = _section(where, p, "img_cond_stage_config").get("params") or {}
    rp = _section(where, _section(where, p, "image_proj_stage_config"), "params")

    arch, image_arch = tp.get("arch", "ViT-H-14"), ip.get("arch", "ViT-H-14")
    if clip is None:
        for name in (arch, image_arch):
            if name not in CLIP_ARCHS:
                raise ConfigError(f"{where}: unknown OpenCLIP arch {name!r} (known: {sorted(CLIP_ARCHS)})")
        clip = CLIP_ARCHS[arch]
    if image_arch != arch:
        raise ConfigError(f"{where}: text arch {arch!r} and image arch {image_arch!r} differ")

    unet = UNetConfig(
        in_channels=_pick(where, up, "in_channels", int),
        out_channels=_pick(where, up, "out_channels", int),
        model_channels=_pick(where, up, "model_channels", int),
        channel_mult=_pick(where, up, "channel_mult", tuple),
        num_res_blocks=_pick(where, up, "num_res_blocks", int),
        attention_resolutions=_pick(where, up, "attention_resolutions", tuple),
        num_head_channels=_pick(where, up, "num_head_channels", int),
        transformer_depth=up.get("transformer_depth", 1),
        context_dim=_pick(where, up, "context_dim", int),
        use_linear=bool(up.get("use_linear", False)),
        temporal_length=_pick(where, up, "temporal_length", int),
        default_fs=up.get("default_fs", 24),
    )
    vae = VAEConfig(
        ch=_pick(where, dd, "ch", int),
        ch_mult=_pick(where, dd, "ch_mult", tuple),
        num_res_blocks=_pick(where, dd, "num_res_blocks", int),
        z_channels=_pick(where, dd, "z_channels", int),
        embed_dim=_pick(where, vp, "embed_dim", int),
        in_channels=dd.get("in_channels", 3),
        out_ch=dd.get("out_ch", 3),
        scale_factor=_pick(where, p, "scale_factor", float),
    )
    resampler = ResamplerConfig(
        dim=_pick(where, rp, "dim", int),
        depth=_pick(where, rp, "depth", int),
        dim_head=_pick(where, rp, "dim_head", int),
        heads=_pick(where, rp, "heads", int),
        num_queries=_pick(where, rp, "num_queries", int),
        embedding_dim=_pick(where, rp, "embedding_dim", int),
        output_dim=_pick(where, rp, "output_dim", int),
        ff_mult=rp.get("ff_mult", 4),
        video_length=rp.get("video_length"),
    )
    sampler = replace(
        DDIMConfig(),
        num_timesteps=p.get("timesteps", 1000),
        linear_start=_pick(where, p, "linear_start", float),
        linear_end=_pick(where, p, "linear_end", float),
        base_scale=float(p.get("base_scale", 0.7)),
        turning_step=p.get("turning_step", 400),
    )
    latent = _pick(where, p, "image_size", tuple)
    if len(latent) != 2:
        raise ConfigError(f"{where}: field 'image_size' must be [h, w], got {latent}")
    frames = resampler.video_length or unet.temporal_length
    config = ToonCrafterConfig(
        unet=unet, vae=vae, clip=clip, resampler=resampler, sampler=sampler, frames=frames,
        latent_size=(latent[0], latent[1]),
    )
    try:
        return config.validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
