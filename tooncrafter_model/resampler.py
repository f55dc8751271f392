"""The image-prompt Resampler (Flamingo's Perceiver Resampler, Alayrac et al. 2022): CLIP image tokens ->
16 learned query tokens per frame.

A Perceiver: learned latents [1, 16*T, dim] attend over concat(image tokens, latents) in `depth` layers of
(attention, feed-forward), each with a residual; then proj_out and norm_out. Tokens 16f..16f+15 condition frame f.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tooncrafter_model.config import ResamplerConfig


class PerceiverAttention(nn.Module):
    """Latents attend over [LN(x); LN(latents)]; q and k are each pre-scaled by dim_head^-1/4, softmax in fp32."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads, self.dim_head = heads, dim_head
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.dim_head).transpose(1, 2)  # b n (h d) -> b h n d

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        x, latents = self.norm1(x), self.norm2(latents)
        b, n, _ = latents.shape
        q = self._heads(self.to_q(latents))
        k, v = (self._heads(t) for t in self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1))
        # the reference scales q and k separately (fp16 stability); kept for parity
        scale = 1.0 / math.sqrt(math.sqrt(self.dim_head))
        weight = (q * scale) @ (k * scale).transpose(-2, -1)
        weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
        out = (weight @ v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # LN -> Linear (no bias) -> GELU -> Linear (no bias); indices 0,1,3 hold the checkpoint's tensors
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
    )


class Resampler(nn.Module):
    """Image tokens [N, L, embedding_dim] -> [N, num_queries * video_length, output_dim]."""

    def __init__(self, cfg: ResamplerConfig) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, cfg.total_queries, cfg.dim) / cfg.dim**0.5)
        self.proj_in = nn.Linear(cfg.embedding_dim, cfg.dim)
        self.proj_out = nn.Linear(cfg.dim, cfg.output_dim)
        self.norm_out = nn.LayerNorm(cfg.output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(cfg.dim, cfg.dim_head, cfg.heads), _feed_forward(cfg.dim, cfg.ff_mult)])
            for _ in range(cfg.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latents = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attn, ff in self.layers:  # type: ignore[misc]
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))
