"""Attention building blocks shared by the UNet's spatial and temporal transformers.

All attention runs through PyTorch SDPA with the default 1/sqrt(dim_head) scale, as the reference's attention uses.
Module and parameter names equal the checkpoint's keys (`to_q`, `to_k_ip`, `ff.net.0.proj`, ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def multihead_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax attention of [B, N, heads*d] queries over [B, M, heads*d] keys/values -> [B, N, heads*d]."""
    b, n, inner = q.shape
    d = inner // heads
    # b n (h d) -> b h n d
    q, k, v = (x.unflatten(-1, (heads, d)).transpose(1, 2) for x in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(b, n, inner)


def pointwise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear or a kernel-1 Conv1d/Conv2d to the last dim of x [..., C] (same maths, one layout)."""
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        return F.linear(x, layer.weight.flatten(1), layer.bias)
    return layer(x)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 and cast back (the reference's `normalization()`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        # one contiguous float32 copy: x.float() of a permuted view would keep its strides and make
        # group_norm copy it once more (1.3 GB each in the decoder's temporal blocks at full size)
        xf = x.to(torch.float32, memory_format=torch.contiguous_format)
        y = F.group_norm(xf, self.num_groups, w, b, self.eps)
        del xf  # before the cast back allocates
        return y.to(x.dtype)


# ---------------------------------------------------------------------------------------------------
# Attention with optional image-prompt keys/values
# ---------------------------------------------------------------------------------------------------


class CrossAttention(nn.Module):
    """Self-attention (no context_dim) or text+image cross-attention with separate softmaxes (IP-Adapter style).

    For cross-attention, context tokens [:text_tokens] go through to_k/to_v and the rest through to_k_ip/to_v_ip;
    the two attention results are summed with weight 1.0 before to_out.
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None = None,
        text_tokens: int = 77,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        kv_dim = context_dim if context_dim is not None else query_dim
        self.heads = heads
        self.text_tokens = text_tokens
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(kv_dim, inner, bias=False)
        self.to_v = nn.Linear(kv_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim))
        self.image_cross_attention = context_dim is not None
        if self.image_cross_attention:
            self.to_k_ip = nn.Linear(kv_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(kv_dim, inner, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = self.to_q(x)
        if not self.image_cross_attention:
            out = multihead_attention(q, self.to_k(x), self.to_v(x), self.heads)
        else:
            if context is None:
                raise ValueError("text+image cross-attention needs a context")
            text, image = context[:, : self.text_tokens], context[:, self.text_tokens :]
            out = multihead_attention(q, self.to_k(text), self.to_v(text), self.heads)
            out = out + multihead_attention(q, self.to_k_ip(image), self.to_v_ip(image), self.heads)
        return self.to_out(out)


class GEGLU(nn.Module):
    """Linear to 2x width, split into (value, gate), value * GELU(gate) with exact erf GELU."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward, 4x inner width."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        # index 1 was dropout in training; kept so the checkpoint's `net.2` lines up
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """x += attn1(LN x); x += attn2(LN x, context); x += FF(LN x). Without context_dim both are self-attention."""

    def __init__(
        self, dim: int, heads: int, dim_head: int, context_dim: int | None = None, text_tokens: int = 77
    ) -> None:
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads, dim_head, context_dim=context_dim, text_tokens=text_tokens)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x
