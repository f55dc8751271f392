"""The 3D denoising UNet (DynamiCrafter's `UNetModel` as ToonCrafter uses it).

Frames are folded into the batch, [(B*T), C, H, W], everywhere except inside the temporal layers. Attribute
names equal the checkpoint's keys (`input_blocks.1.0.temopral_conv...`), so loading needs no rename table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tooncrafter_model.attention import BasicTransformerBlock, GroupNorm32, pointwise
from tooncrafter_model.config import UNetConfig
from tooncrafter_model.temporal import TemporalConvBlock, TemporalTransformer
from tooncrafter_model.vae import Upsample  # the same nearest-x2 + conv as the VAE's

# ---------------------------------------------------------------------------------------------------
# Embeddings and conditioning layout
# ---------------------------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos(t f), sin(t f)], f_i = exp(-ln(max_period) i / half); cos first, in the
    reference's order."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def per_frame_context(context: torch.Tensor, frames: int, text_tokens: int = 77, per_frame: int = 16) -> torch.Tensor:
    """[B, L, C] -> [(B*T), L', C]: text repeated to every frame, image tokens split 16 per frame.

    The split happens only when L == text_tokens + per_frame * frames (the reference hard-codes this test);
    any other length repeats the whole context to every frame.
    """
    if context.shape[1] == text_tokens + per_frame * frames:
        text = context[:, :text_tokens].repeat_interleave(frames, dim=0)
        image = rearrange(context[:, text_tokens:], "b (t l) c -> (b t) l c", t=frames)
        return torch.cat([text, image], dim=1)
    return context.repeat_interleave(frames, dim=0)


# ---------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """GN-SiLU-conv, + time embedding as a per-channel bias, GN-SiLU-conv, skip; then the temporal conv.

    `temporal=False` leaves the temporal conv out (the 2D block of the sketch encoder).
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int, temporal: bool = True) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(
            GroupNorm32(32, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            GroupNorm32(32, out_channels), nn.SiLU(), nn.Identity(), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        # the checkpoint's spelling
        self.temopral_conv: TemporalConvBlock | None = TemporalConvBlock(out_channels) if temporal else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor, batch: int) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        h = self.skip_connection(x) + self.out_layers(h)
        if self.temopral_conv is None:
            return h
        h = rearrange(h, "(b t) c h w -> b c t h w", b=batch)
        return rearrange(self.temopral_conv(h), "b c t h w -> (b t) c h w")


class SpatialTransformer(nn.Module):
    """Per-frame transformer over the h*w tokens with text+image cross-attention."""

    def __init__(
        self,
        channels: int,
        heads: int,
        dim_head: int,
        depth: int,
        context_dim: int,
        text_tokens: int,
        use_linear: bool,
        block: type[BasicTransformerBlock] = BasicTransformerBlock,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in: nn.Module = nn.Linear(channels, inner) if use_linear else nn.Conv2d(channels, inner, 1)
        # `block` lets the sketch encoder swap in plain (text-and-image-in-one-softmax) cross-attention
        self.transformer_blocks = nn.ModuleList(
            block(inner, heads, dim_head, context_dim=context_dim, text_tokens=text_tokens) for _ in range(depth)
        )
        self.proj_out: nn.Module = nn.Linear(inner, channels) if use_linear else nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        y = pointwise(self.proj_in, rearrange(self.norm(x), "n c h w -> n (h w) c"))
        for block in self.transformer_blocks:
            y = block(y, context)
        return rearrange(pointwise(self.proj_out, y), "n (h w) c -> n c h w", h=h, w=w) + x


class Downsample(nn.Module):
    """Stride-2 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class UNetBlock(nn.Sequential):
    """One entry of input_blocks/middle_block/output_blocks: runs each layer with what it needs."""

    def forward(  # type: ignore[override]
        self, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, batch: int
    ) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                h = layer(h, emb, batch)
            elif isinstance(layer, SpatialTransformer):
                h = layer(h, context)
            elif isinstance(layer, TemporalTransformer):
                h = rearrange(h, "(b t) c h w -> b c t h w", b=batch)
                h = rearrange(layer(h), "b c t h w -> (b t) c h w")
            else:
                h = layer(h)
        return h


# ---------------------------------------------------------------------------------------------------
# The UNet
# ---------------------------------------------------------------------------------------------------


class UNet(nn.Module):
    """v-prediction UNet over [B, 8, T, h, w] (noisy latent first, then the keyframe concat latents)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        mc, emb_dim = cfg.model_channels, cfg.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.fps_embedding = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input_blocks = nn.ModuleList([UNetBlock(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))])
        self.init_attn = UNetBlock(
            TemporalTransformer(mc, cfg.init_attn_heads, cfg.num_head_channels, cfg.transformer_depth, use_linear=False)
        )
        skip_chans, ch, ds = [mc], mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers = [ResBlock(ch, emb_dim, mult * mc)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += self._attention(ch)
                self.input_blocks.append(UNetBlock(*layers))
                skip_chans.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(UNetBlock(Downsample(ch)))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = UNetBlock(ResBlock(ch, emb_dim, ch), *self._attention(ch), ResBlock(ch, emb_dim, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [ResBlock(ch + skip_chans.pop(), emb_dim, mult * mc)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += self._attention(ch)
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(UNetBlock(*layers))
        self.out = nn.Sequential(GroupNorm32(32, ch), nn.SiLU(), nn.Conv2d(mc, cfg.out_channels, 3, padding=1))

    def _attention(self, ch: int) -> list[nn.Module]:
        cfg = self.cfg
        heads, d = ch // cfg.num_head_channels, cfg.num_head_channels
        return [
            SpatialTransformer(ch, heads, d, cfg.transformer_depth, cfg.context_dim, cfg.text_tokens, cfg.use_linear),
            TemporalTransformer(ch, heads, d, cfg.transformer_depth, use_linear=cfg.use_linear),
        ]

    def embed(
        self, timesteps: torch.Tensor, fs: torch.Tensor | None, batch: int, frames: int, dtype: torch.dtype
    ) -> torch.Tensor:
        """time_embed(E(t)) + fps_embedding(E(fs)), repeated per frame -> [(B*T), 4*mc]."""
        mc = self.cfg.model_channels
        if timesteps.ndim == 0 or timesteps.shape[0] != batch:
            timesteps = timesteps.reshape(-1).expand(batch)
        if fs is None:
            fs = torch.full((batch,), self.cfg.default_fs, dtype=torch.long, device=timesteps.device)
        elif fs.ndim == 0 or fs.shape[0] != batch:
            fs = fs.reshape(-1).expand(batch)
        emb = self.time_embed(timestep_embedding(timesteps, mc).to(dtype))
        emb = emb + self.fps_embedding(timestep_embedding(fs, mc).to(dtype))
        return emb.repeat_interleave(frames, dim=0)

    def encode(
        self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Down path and middle block on [(B*T), C, h, w]; returns (middle output, skips in push order)."""
        skips = []
        h = x
        for i, block in enumerate(self.input_blocks):
            h = block(h, emb, context, batch)
            if i == 0:
                h = self.init_attn(h, emb, context, batch)
            skips.append(h)
        return self.middle_block(h, emb, context, batch), skips

    def decode(
        self,
        h: torch.Tensor,
        skips: list[torch.Tensor],
        emb: torch.Tensor,
        context: torch.Tensor,
        batch: int,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Up path: concat [h, skip] (h first) per block, then the output head.

        `control` (the sketch encoder's): one residual per skip plus one for the middle output, in push order
        [skip_0, ..., skip_N, middle]; each is added before its tensor is used.
        """
        skips = list(skips)
        residuals = list(control) if control is not None else None
        if residuals is not None:
            if len(residuals) != len(skips) + 1:
                raise ValueError(f"control needs {len(skips) + 1} residuals, got {len(residuals)}")
            h = h + residuals.pop()
        for block in self.output_blocks:
            skip = skips.pop()
            if residuals is not None:
                skip = skip + residuals.pop()
            h = block(torch.cat([h, skip], dim=1), emb, context, batch)
        return self.out(h)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        fs: torch.Tensor | None = None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x [B, in_ch, T, h, w], timesteps [B], context [B, L, C], fs [B] or None -> v [B, out_ch, T, h, w]."""
        b, _, t, _, _ = x.shape
        emb = self.embed(timesteps, fs, b, t, x.dtype)
        ctx = per_frame_context(context, t, self.cfg.text_tokens, self.cfg.image_tokens_per_frame)
        h = rearrange(x, "b c t h w -> (b t) c h w")
        h, skips = self.encode(h, emb, ctx, b)
        y = self.decode(h, skips, emb, ctx, b, control)
        return rearrange(y, "(b t) c h w -> b c t h w", b=b)
