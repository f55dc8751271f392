"""ToonCrafter's dual-reference video decoder and the first stage that wraps it (ToonCrafter paper,
"dual-reference-based 3D decoder").

An SVD-style conv-only temporal decoder: every ResnetBlock is a VideoResBlock (2D block, then a (3,1,1)
time_stack, blended by sigmoid(mix_factor)); features of the two keyframes from the encoder are injected by
cross-attention at the H/8 and H/4 levels and by 1x1 "Combiner" convs on the first/last frame elsewhere.
The decoder takes latents folded as [(B*T), z, h, w] plus `timesteps` = T of the chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import nn

from tooncrafter_model.attention import GroupNorm32, multihead_attention
from tooncrafter_model.config import VAEConfig
from tooncrafter_model.vae import AttnBlock, Encoder, ResnetBlock, Upsample, _Level, _Mid, normalize, swish

# ---------------------------------------------------------------------------------------------------
# Temporal blocks
# ---------------------------------------------------------------------------------------------------


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, frames: int | None) -> torch.Tensor:
    """fn over x [(B*T), C, H, W] `frames` frames at a time, for layers that treat each frame on its own.

    The maths is fn(x)'s (GroupNorm statistics and convs are per frame), up to the last bits where a conv
    picks another kernel for another batch size; the transients of fn (float32 norm outputs, swish) shrink
    to a slice, and at full size they set the decode's peak (bench/tooncrafter.py estimates it).
    """
    if frames is None or frames >= x.shape[0]:
        return fn(x)
    first = fn(x[:frames])
    out = first.new_empty(x.shape[0], *first.shape[1:])
    out[:frames] = first
    del first
    for start in range(frames, x.shape[0], frames):
        out[start : start + frames] = fn(x[start : start + frames])
    return out


class TimeStackBlock(nn.Module):
    """ResBlock over [B, C, T, H, W] with (3,1,1) convs, float32 GroupNorm eps 1e-5, identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        conv = lambda: nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))  # noqa: E731
        # in-place SiLU on the norm's fresh output: at full size each copy is a 1.3 GB tensor
        self.in_layers = nn.Sequential(GroupNorm32(32, channels), nn.SiLU(inplace=True), conv())
        self.out_layers = nn.Sequential(GroupNorm32(32, channels), nn.SiLU(inplace=True), nn.Identity(), conv())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out_layers(self.in_layers(x))


class VideoResBlock(ResnetBlock):
    """2D ResnetBlock s, then u = time_stack(s); output sigmoid(m) * u + (1 - sigmoid(m)) * s."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.time_stack = TimeStackBlock(out_channels)
        self.mix_factor = nn.Parameter(torch.zeros(1))

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, timesteps: int, frames: int | None = None
    ) -> torch.Tensor:
        s = rearrange(per_frame(super().forward, x, frames), "(b t) c h w -> b c t h w", t=timesteps)
        alpha = torch.sigmoid(self.mix_factor)
        y = self.time_stack(s).mul_(alpha).add_((1.0 - alpha) * s)  # alpha u + (1 - alpha) s, in u's buffer
        return rearrange(y, "b c t h w -> (b t) c h w")


class AE3DConv(nn.Conv2d):
    """3x3 Conv2d per frame, then `time_mix_conv` (3,1,1) across frames (replaces, no residual)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)
        self.time_mix_conv = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:  # type: ignore[override]
        y = rearrange(super().forward(x), "(b t) c h w -> b c t h w", t=timesteps)
        return rearrange(self.time_mix_conv(y), "b c t h w -> (b t) c h w")


# ---------------------------------------------------------------------------------------------------
# Reference injection
# ---------------------------------------------------------------------------------------------------


class FusionCrossAttention(nn.Module):
    """Each frame's h*w tokens attend over keyframe A's then keyframe B's h*w feature tokens; x + to_out(.)."""

    def __init__(self, channels: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(channels, inner, bias=False)
        self.to_k = nn.Linear(channels, inner, bias=False)
        self.to_v = nn.Linear(channels, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, channels))
        self.norm = normalize(channels)

    def forward(self, x: torch.Tensor, ref: torch.Tensor, timesteps: int) -> torch.Tensor:
        n, _, h, w = x.shape
        q = self.to_q(rearrange(self.norm(x), "n c h w -> n (h w) c"))
        ctx = rearrange(ref, "b c k h w -> b (k h w) c")  # k = 2 keyframes, A's tokens first
        k, v = self.to_k(ctx), self.to_v(ctx)
        # the same keys for every frame of a clip: expand instead of copying
        k, v = (rearrange(z[:, None].expand(-1, n // ref.shape[0], -1, -1), "b t m c -> (b t) m c") for z in (k, v))
        out = multihead_attention(q, k, v, self.heads)
        return x + rearrange(self.to_out(out), "n (h w) c -> n c h w", h=h, w=w)


class Combiner(nn.Module):
    """1x1 conv of the keyframe features, added to the first frame (A) and the last frame (B) only."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, ref: torch.Tensor, timesteps: int) -> torch.Tensor:
        feats = rearrange(self.conv(rearrange(ref, "b c k h w -> (b k) c h w")), "(b k) c h w -> b c k h w", k=2)
        y = rearrange(x, "(b t) c h w -> b c t h w", t=timesteps)
        middle = y[:, :, 1:-1]
        y = torch.cat([y[:, :, :1] + feats[:, :, :1], middle, y[:, :, -1:] + feats[:, :, 1:]], dim=2)
        return rearrange(y, "b c t h w -> (b t) c h w")


# ---------------------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------------------


class DualRefDecoder(nn.Module):
    """z [(B*T), z_ch, h, w] + 5 keyframe feature maps [B, C, 2, *, *] -> frames [(B*T), 3, 8h, 8w]."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch, mult = cfg.ch, cfg.ch_mult
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _Mid(VideoResBlock(block_in, block_in), AttnBlock(block_in), VideoResBlock(block_in, block_in))
        levels: list[_Level] = []
        for level in reversed(range(len(mult))):
            block_out = ch * mult[level]
            blocks: list[nn.Module] = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(VideoResBlock(block_in, block_out))
                block_in = block_out
            levels.insert(0, _Level(blocks, Upsample(block_in) if level else None, "upsample"))
        self.up = nn.ModuleList(levels)
        refine: list[nn.Module] = []
        for level, m in enumerate(mult):
            if level in cfg.fusion_levels:
                refine.append(FusionCrossAttention(ch * m, cfg.fusion_heads, cfg.fusion_head_dim))
            else:
                refine.append(Combiner(ch * m))
        refine.append(Combiner(ch))  # on the encoder's conv_in features, before conv_out
        self.attn_refinement = nn.ModuleList(refine)
        self.norm_out = normalize(block_in)
        self.conv_out = AE3DConv(block_in, cfg.out_ch)

    def forward(
        self, z: torch.Tensor, ref_context: list[torch.Tensor], timesteps: int, frames: int | None = None
    ) -> torch.Tensor:
        """`frames`: how many frames the per-frame layers take at once (memory only; None = all)."""
        h = self.conv_in(z)
        h = self.mid.block_1(h, timesteps, frames)
        h = per_frame(self.mid.attn_1, h, frames)
        h = self.mid.block_2(h, timesteps, frames)
        for level in reversed(range(len(self.up))):
            for block in self.up[level].block:
                h = block(h, timesteps, frames)
            h = self.attn_refinement[level](h, ref_context[level], timesteps)
            if level:
                h = per_frame(self.up[level].upsample, h, frames)
        h = per_frame(lambda y: swish(self.norm_out(y)), h, frames)
        h = self.attn_refinement[-1](h, ref_context[-1], timesteps)
        return self.conv_out(h, timesteps)


# ---------------------------------------------------------------------------------------------------
# The first stage (`first_stage_model`)
# ---------------------------------------------------------------------------------------------------


class AutoencoderKLDualRef(nn.Module):
    """Encoder + quant_conv, and the dual-ref decoder; post_quant_conv is kept for the checkpoint, never run."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = DualRefDecoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.embed_dim, 1)
        # the reference skips it whenever decode gets ref_context, which it always does
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """[N, 3, H, W] in [-1, 1] -> (moments [N, 2*embed, H/8, W/8], 5 hidden maps [N, C, *, *])."""
        h, hidden = self.encoder(frames)
        return self.quant_conv(h), hidden

    def decode(
        self, latents: torch.Tensor, ref_context: list[torch.Tensor], chunk: int, frames: int | None = None
    ) -> torch.Tensor:
        """Scaled latents [B, z, T, h, w] -> [B, 3, T, H, W], each clip decoded in chunks of `chunk` frames.

        `chunk` is part of the numerics (each call adds the keyframe features to its own ends);
        `frames` only bounds memory: the per-frame layers take that many frames at a time.
        """
        clips = []
        for i, clip in enumerate(latents):
            z = (1.0 / self.cfg.scale_factor) * rearrange(clip, "c t h w -> t c h w")
            refs = [r[i : i + 1] for r in ref_context]
            parts = [self.decoder(piece, refs, piece.shape[0], frames) for piece in z.split(chunk)]
            clips.append(rearrange(torch.cat(parts), "t c h w -> c t h w"))
        return torch.stack(clips)
