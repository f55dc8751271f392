"""OpenCLIP ViT-H/14 towers as ToonCrafter uses them , matching open_clip 2.22's weights.

Text: token + positional embedding, all resblocks but the last under a causal mask, ln_final -> [N, 77, W].
Image: squash-resize to 224 (bicubic, align_corners, Gaussian antialias when shrinking, like kornia), CLIP
normalisation, ViT trunk; all 257 tokens before ln_post -> [N, 257, W]. We run batch-first; open_clip 2.22 ran
sequence-first, which is the same maths. The unused tensors of the checkpoint (text_projection,
logit_scale, ln_post, proj, the image embedder's text-side embeddings) are kept so loading stays strict.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from tooncrafter_model.config import CLIPConfig, TextTowerConfig, VisionTowerConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# ---------------------------------------------------------------------------------------------------
# Transformer (open_clip's ResidualAttentionBlock layout: packed in_proj, exact GELU)
# ---------------------------------------------------------------------------------------------------


class PackedSelfAttention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight [3W, W], in_proj_bias, out_proj), batch-first, SDPA."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.randn(3 * width, width) * width**-0.5)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        b, n, w = x.shape
        # b n (3 h d) -> 3 b h n d
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, self.heads, w // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, w))


class ResidualAttentionBlock(nn.Module):
    """x += attn(ln_1 x); x += mlp(ln_2 x)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = PackedSelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, hidden), gelu=nn.GELU(), c_proj=nn.Linear(hidden, width))
        )

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of resblocks; `layers` limits how many run (the text tower stops one early)."""

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: bool = False, layers: int | None = None) -> torch.Tensor:
        for block in self.resblocks[:layers]:
            x = block(x, causal)
        return x


# ---------------------------------------------------------------------------------------------------
# Towers
# ---------------------------------------------------------------------------------------------------


class VisionTransformer(nn.Module):
    """ViT trunk: 14x14 patches, class token, positional embedding, ln_pre, resblocks."""

    def __init__(self, cfg: VisionTowerConfig, embed_dim: int) -> None:
        super().__init__()
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w) * w**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.tokens, w) * w**-0.5)
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.layers, cfg.heads, cfg.mlp_ratio)
        self.ln_post = nn.LayerNorm(w)  # unused by ToonCrafter
        self.proj = nn.Parameter(torch.randn(w, embed_dim) * w**-0.5)  # unused by ToonCrafter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed [N, 3, 224, 224] -> all tokens [N, 1 + patches, W] before ln_post."""
        x = self.conv1(x).flatten(2).transpose(1, 2)  # n w gh gw -> n (gh gw) w
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.transformer(self.ln_pre(x))


class OpenCLIP(nn.Module):
    """open_clip's CLIP module with the parts a ToonCrafter embedder keeps (`text_trunk`, `visual`)."""

    def __init__(self, cfg: CLIPConfig, *, text_trunk: bool, visual: bool) -> None:
        super().__init__()
        t: TextTowerConfig = cfg.text
        self.token_embedding = nn.Embedding(t.vocab_size, t.width)
        self.positional_embedding = nn.Parameter(torch.randn(t.context_length, t.width) * 0.01)
        if text_trunk:
            self.transformer = Transformer(t.width, t.layers, t.heads, t.mlp_ratio)
        self.ln_final = nn.LayerNorm(t.width)
        self.text_projection = nn.Parameter(torch.randn(t.width, cfg.embed_dim) * t.width**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        if visual:
            self.visual = VisionTransformer(cfg.vision, cfg.embed_dim)


# ---------------------------------------------------------------------------------------------------
# Embedders (`cond_stage_model`, `embedder`)
# ---------------------------------------------------------------------------------------------------


class TextEncoder(nn.Module):
    """Token ids [N, 77] -> penultimate-layer token states after ln_final [N, 77, W]."""

    def __init__(self, cfg: CLIPConfig) -> None:
        super().__init__()
        self.layers_run = cfg.text.layers - cfg.text_layers_skipped
        self.model = OpenCLIP(cfg, text_trunk=True, visual=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.token_embedding(tokens) + m.positional_embedding
        x = m.transformer(x, causal=True, layers=self.layers_run)
        return m.ln_final(x)


def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    g = torch.exp(-x.pow(2) / (2 * sigma**2))
    return g / g.sum()


def resize_like_kornia(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """kornia.geometry.resize(x, size, 'bicubic', align_corners=True, antialias=True), re-derived.

    When shrinking, first a separable Gaussian blur with sigma = (factor - 1) / 2 (at least 0.001) per axis and
    an odd kernel of int(max(4 sigma, 3)) taps, reflect-padded; then bicubic interpolation.
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    factors = (h / size[0], w / size[1])
    if max(factors) > 1:
        sigmas = [max((f - 1.0) / 2.0, 0.001) for f in factors]
        ks = [int(max(4.0 * s, 3)) for s in sigmas]
        ks = [k + 1 if k % 2 == 0 else k for k in ks]
        c = x.shape[1]
        ky = _gaussian_kernel(ks[0], sigmas[0], x.dtype, x.device)
        kx = _gaussian_kernel(ks[1], sigmas[1], x.dtype, x.device)
        x = F.pad(x, (ks[1] // 2, ks[1] // 2, 0, 0), mode="reflect")
        x = F.conv2d(x, kx.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        x = F.pad(x, (0, 0, ks[0] // 2, ks[0] // 2), mode="reflect")
        x = F.conv2d(x, ky.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.interpolate(x, size=size, mode="bicubic", align_corners=True)


class ImageEncoder(nn.Module):
    """Images [N, 3, H, W] in [-1, 1] -> ViT tokens [N, 257, W] (squashed to 224, never cropped)."""

    def __init__(self, cfg: CLIPConfig) -> None:
        super().__init__()
        self.image_size = cfg.vision.image_size
        self.model = OpenCLIP(cfg, text_trunk=False, visual=True)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the tower's size, map [-1, 1] -> [0, 1], CLIP-normalise."""
        x = resize_like_kornia(images, (self.image_size, self.image_size))
        x = (x + 1.0) / 2.0
        # constants, not buffers: a meta-built model loaded with assign=True has nothing left to fill in
        mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.visual(self.preprocess(images))
