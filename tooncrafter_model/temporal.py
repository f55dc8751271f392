"""The UNet's temporal layers: the 4-stage temporal conv inside every ResBlock and the temporal transformer.

Both work on [B, C, T, H, W]. Their GroupNorms see the whole clip (groups span T, H and W), and zero padding
in time is the only positional signal: there is no positional embedding and no mask.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from tooncrafter_model.attention import BasicTransformerBlock, pointwise


def _stage(channels: int, with_dropout_slot: bool) -> nn.Sequential:
    # GroupNorm (eps 1e-5, not float32-forced) -> SiLU -> [dropout slot] -> Conv3d over time only
    layers: list[nn.Module] = [nn.GroupNorm(32, channels), nn.SiLU()]
    if with_dropout_slot:
        layers.append(nn.Identity())  # dropout in training; keeps the checkpoint's index 3
    layers.append(nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)))
    return nn.Sequential(*layers)


class TemporalConvBlock(nn.Module):
    """x + conv4(conv3(conv2(conv1(x)))) with (3,1,1) kernels: mixes each pixel with its neighbour frames."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _stage(channels, with_dropout_slot=False)
        self.conv2 = _stage(channels, with_dropout_slot=True)
        self.conv3 = _stage(channels, with_dropout_slot=True)
        self.conv4 = _stage(channels, with_dropout_slot=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv4(self.conv3(self.conv2(self.conv1(x))))


class TemporalTransformer(nn.Module):
    """Self-attention along time at every spatial position; both attn1 and attn2 are self-attention."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int = 1, use_linear: bool = True) -> None:
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        # init_attn uses kernel-1 Conv1d projections (use_linear=False), the other levels Linear ones
        self.proj_in: nn.Module = nn.Linear(channels, inner) if use_linear else nn.Conv1d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(BasicTransformerBlock(inner, heads, dim_head) for _ in range(depth))
        self.proj_out: nn.Module = nn.Linear(inner, channels) if use_linear else nn.Conv1d(inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = rearrange(self.norm(x), "b c t h w -> (b h w) t c")
        y = pointwise(self.proj_in, y)
        for block in self.transformer_blocks:
            y = block(y)
        y = pointwise(self.proj_out, y)
        return rearrange(y, "(b h w) t c -> b c t h w", b=b, h=h, w=w) + x
