"""The SD KL-f8 encoder with per-level hidden states, and the 2D blocks the dual-reference decoder reuses.

As in Stable Diffusion 2's KL-f8 autoencoder: GroupNorm eps 1e-6 and swish everywhere; Downsample pads
(0,1,0,1) then convolves with stride 2; the posterior clamps logvar to [-30, 20]. Attribute names equal the
checkpoint's keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tooncrafter_model.config import VAEConfig


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x), written out as the SD-VAE does (F.silu differs in the last bit).

    The product goes into sigmoid's buffer: one full-size tensor instead of two, the same numbers.
    """
    return torch.sigmoid(x).mul_(x)


def normalize(channels: int) -> nn.GroupNorm:
    """The SD-VAE GroupNorm: 32 groups, eps 1e-6."""
    return nn.GroupNorm(32, channels, eps=1e-6)


# ---------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """GN-swish-conv3x3 twice with a residual (1x1 nin_shortcut when the width changes); no time embedding."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = normalize(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 conv q/k/v/proj_out, scale c^-0.5."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = normalize(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self.norm(x)
        # n c h w -> n 1 (h w) c : one head
        q, k, v = (conv(y).flatten(2).transpose(1, 2).unsqueeze(1) for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.squeeze(1).transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Zero-pad right/bottom by one, then a stride-2 3x3 conv without padding."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One encoder/decoder resolution level: `block` list, empty `attn` list, optional resampler."""

    def __init__(self, blocks: list[nn.Module], resample: nn.Module | None, resample_name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList()  # attn_resolutions is [] for this model
        if resample is not None:
            self.add_module(resample_name, resample)


class _Mid(nn.Module):
    def __init__(self, block_1: nn.Module, attn_1: nn.Module, block_2: nn.Module) -> None:
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = block_1, attn_1, block_2


# ---------------------------------------------------------------------------------------------------
# Encoder and posterior
# ---------------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """[N, 3, H, W] -> moments [N, 2*z, H/8, W/8] plus 5 hidden states."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch = cfg.ch
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(cfg.ch_mult):
            block_out = ch * mult
            blocks: list[nn.Module] = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out))
                block_in = block_out
            last = level == len(cfg.ch_mult) - 1
            self.down.append(_Level(blocks, None if last else Downsample(block_in), "downsample"))
        self.mid = _Mid(ResnetBlock(block_in, block_in), AttnBlock(block_in), ResnetBlock(block_in, block_in))
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns (moments, hidden) with hidden = [level 0..L-1 last block outputs, conv_in output]."""
        first = h = self.conv_in(x)
        hidden = []
        for level in self.down:
            for block in level.block:
                h = block(h)
            hidden.append(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        h = self.conv_out(swish(self.norm_out(h)))
        hidden.append(first)
        return h, hidden


def split_posterior(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """quant_conv moments -> (mean, logvar clamped to [-30, 20])."""
    mean, logvar = moments.chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def sample_posterior(mean: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * noise (a sample, not the mean, as the reference encodes)."""
    return mean + torch.exp(0.5 * logvar) * noise
