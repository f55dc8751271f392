"""Sketch guidance (ToonCrafter paper, "sketch-based controllable generation"): a ControlNet-style sketch
encoder whose residuals steer ToonCrafter's UNet.

The released `sketch_encoder.ckpt` loads strictly into an SD-2.1 ControlNet with a 1-channel hint: the UNet's
down path and middle block, purely 2D and per frame (no temporal layers, no fs embedding, one softmax over all
context tokens), plus an 8-conv hint stem and 13 1x1 "zero convs" that tap every skip and the middle output.
No official code exists; the wiring follows the community re-creation:

- the encoder sees x_t only (4 channels, without the keyframe concat latents), per frame as [(B*T), 4, h, w],
  the same t, and the whole cross-attention context (text + all image tokens) repeated to every frame;
- each hint is the frame's sketch in grayscale, inverted so lines are white, in [0, 1]; frames without a
  sketch get an all-zero hint;
- the 13 residuals are scaled by `sketch_scale` (default 0.6) and added to the UNet's skips and middle output,
  the same residuals in both CFG branches.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import nn

from tooncrafter_model.attention import BasicTransformerBlock, multihead_attention
from tooncrafter_model.config import UNetConfig
from tooncrafter_model.frames import Frame, check_frame
from tooncrafter_model.unet import Downsample, ResBlock, SpatialTransformer, UNetBlock, timestep_embedding

# Widths of the hint stem's 3x3 convs (SiLU between them); stride 2 on the 3rd, 5th and 7th: H x W -> H/8 x W/8.
HINT_WIDTHS = (16, 16, 32, 32, 96, 96, 256)
HINT_STRIDE2 = (2, 4, 6)  # conv numbers (0-based) with stride 2
DEFAULT_SCALE = 0.6

# ---------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------


class ContextAttention(nn.Module):
    """Plain cross-attention: every context token through to_k/to_v, one softmax (no image-prompt K/V)."""

    def __init__(self, query_dim: int, heads: int, dim_head: int, context_dim: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is None:
            raise ValueError("the sketch encoder's cross-attention needs a context")
        return self.to_out(multihead_attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads))


class ControlTransformerBlock(BasicTransformerBlock):
    """The UNet's transformer block with SD-2.1 cross-attention (text and image tokens in one softmax)."""

    def __init__(
        self, dim: int, heads: int, dim_head: int, context_dim: int | None = None, text_tokens: int = 77
    ) -> None:
        super().__init__(dim, heads, dim_head)
        self.attn2 = ContextAttention(dim, heads, dim_head, context_dim if context_dim is not None else dim)


def _zero_conv(channels: int) -> nn.Sequential:
    # zero-initialised in training; a Sequential so the keys read `zero_convs.i.0.weight`
    return nn.Sequential(nn.Conv2d(channels, channels, 1))


# ---------------------------------------------------------------------------------------------------
# The encoder
# ---------------------------------------------------------------------------------------------------


class SketchEncoder(nn.Module):
    """ControlNet over x_t [(B*T), 4, h, w] + hint [(B*T), 1, 8h, 8w] -> 13 residuals (one per skip, then the
    middle), shaped like the UNet's skips; built from the UNet's config so widths and levels line up."""

    def __init__(self, cfg: UNetConfig, hint_channels: int = 1) -> None:
        super().__init__()
        self.cfg = cfg
        mc, emb_dim = cfg.model_channels, cfg.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        stem: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip((hint_channels, *HINT_WIDTHS), (*HINT_WIDTHS, mc), strict=True)):
            if i:
                stem.append(nn.SiLU())
            stem.append(nn.Conv2d(cin, cout, 3, padding=1, stride=2 if i in HINT_STRIDE2 else 1))
        self.input_hint_block = nn.Sequential(*stem)
        self.input_blocks = nn.ModuleList([UNetBlock(nn.Conv2d(cfg.out_channels, mc, 3, padding=1))])
        self.zero_convs = nn.ModuleList([_zero_conv(mc)])
        ch, ds = mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, mult * mc, temporal=False)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers.append(self._attention(ch))
                self.input_blocks.append(UNetBlock(*layers))
                self.zero_convs.append(_zero_conv(ch))
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(UNetBlock(Downsample(ch)))
                self.zero_convs.append(_zero_conv(ch))
                ds *= 2
        self.middle_block = UNetBlock(
            ResBlock(ch, emb_dim, ch, temporal=False), self._attention(ch), ResBlock(ch, emb_dim, ch, temporal=False)
        )
        self.middle_block_out = _zero_conv(ch)

    def _attention(self, ch: int) -> SpatialTransformer:
        cfg = self.cfg
        heads, d = ch // cfg.num_head_channels, cfg.num_head_channels
        return SpatialTransformer(
            ch, heads, d, cfg.transformer_depth, cfg.context_dim, cfg.text_tokens, cfg.use_linear,
            block=ControlTransformerBlock,
        )

    def forward(
        self, x: torch.Tensor, hint: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor
    ) -> list[torch.Tensor]:
        """x [N, 4, h, w], hint [N, 1, 8h, 8w], timesteps [N], context [N, L, C] (N = frames) -> residuals."""
        emb = self.time_embed(timestep_embedding(timesteps, self.cfg.model_channels).to(x.dtype))
        guided = self.input_hint_block(hint.to(x.dtype))
        outs = []
        h = x
        for i, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs, strict=True)):
            h = block(h, emb, context, 1)
            if i == 0:
                h = h + guided  # the hint joins after the first conv
            outs.append(zero_conv(h))
        h = self.middle_block(h, emb, context, 1)
        outs.append(self.middle_block_out(h))
        return outs


# ---------------------------------------------------------------------------------------------------
# Hints and the control callable the pipeline takes
# ---------------------------------------------------------------------------------------------------


def sketch_hint(frame: Frame, what: str = "sketch") -> torch.Tensor:
    """uint8 HxWx3 sketch (dark lines on white) -> [1, H, W] float in [0, 1], lines white: 1 - luma/255.

    Luma uses the ITU-R 601 weights (what PIL's "L" conversion uses).
    """
    rgb = check_frame(frame, what).astype(np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return torch.from_numpy(1.0 - luma / 255.0)[None].clamp(0.0, 1.0)


class SketchControl:
    """Per-step control for `ToonCrafterPipeline.generate`: the encoder on x_t with the clip's hints, scaled."""

    def __init__(self, encoder: SketchEncoder, hints: torch.Tensor, scale: float = DEFAULT_SCALE) -> None:
        self.encoder = encoder
        self.hints = hints  # [T, 1, H, W]; zeros where a frame has no sketch
        self.scale = float(scale)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> list[torch.Tensor]:
        b, _, frames, _, _ = x.shape
        if frames != self.hints.shape[0]:
            raise ValueError(f"sketch hints cover {self.hints.shape[0]} frames, the clip has {frames}")
        h = rearrange(x, "b c t h w -> (b t) c h w")
        hint = self.hints.to(x.device).repeat(b, 1, 1, 1)
        ctx = context.repeat_interleave(frames, dim=0)  # all tokens to every frame, no per-frame split
        steps = t.reshape(-1).expand(b).repeat_interleave(frames)
        return [self.scale * r for r in self.encoder(h, hint, steps, ctx)]
