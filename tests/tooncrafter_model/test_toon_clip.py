"""OpenCLIP towers and the kornia-style resize: properties the golden file does not reach (downscaling blur,
causality of the text tower, token layout of the image tower)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tooncrafter_model.clip import ImageEncoder, TextEncoder, resize_like_kornia
from tooncrafter_model.config import CLIP_ARCHS


def direct_blur_then_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Independent route: one 2D Gaussian kernel (outer product), reflect padding, then bicubic."""
    sig = [max((n / s - 1.0) / 2.0, 0.001) for n, s in zip(x.shape[-2:], size)]
    ks = [int(max(4.0 * s, 3)) | 1 for s in sig]  # odd

    def g1(k: int, s: float) -> torch.Tensor:
        v = torch.tensor([math.exp(-((i - k // 2) ** 2) / (2 * s * s)) for i in range(k)], dtype=torch.float64)
        return v / v.sum()

    kernel = torch.outer(g1(ks[0], sig[0]), g1(ks[1], sig[1])).float()
    c = x.shape[1]
    padded = F.pad(x, (ks[1] // 2, ks[1] // 2, ks[0] // 2, ks[0] // 2), mode="reflect")
    blurred = F.conv2d(padded, kernel.expand(c, 1, *kernel.shape), groups=c)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


@pytest.mark.parametrize("hw", [(320, 512), (1080, 1920), (600, 160)])
def test_downscaling_blurs_like_an_independent_2d_gaussian(hw: tuple[int, int]) -> None:
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = resize_like_kornia(x, (224, 224))
    torch.testing.assert_close(got, direct_blur_then_resize(x, (224, 224)), atol=2e-5, rtol=1e-5)
    plain = F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=True)
    assert (got - plain).abs().max().item() > 0.05  # the blur matters when shrinking


def test_upscaling_and_identity_do_not_blur() -> None:
    x = torch.rand(2, 3, 48, 80, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        resize_like_kornia(x, (224, 224)), F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=True)
    )
    same = torch.rand(1, 3, 224, 224)
    assert resize_like_kornia(same, (224, 224)) is same


def test_text_tower_is_causal_and_skips_its_last_layer() -> None:
    torch.manual_seed(0)
    enc = TextEncoder(CLIP_ARCHS["tc-tiny"]).eval()
    assert enc.layers_run == 2
    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[:, :4] = torch.tensor([49406, 320, 2368, 49407])
    tokens[1, 2] = 1125  # differs from position 2 onwards
    with torch.no_grad():
        out = enc(tokens)
        assert out.shape == (2, 77, 32)
        torch.testing.assert_close(out[0, :2], out[1, :2])
        assert (out[0, 2:] - out[1, 2:]).abs().max().item() > 1e-3
        # the last resblock is never run: changing it changes nothing
        before = enc(tokens)
        torch.nn.init.normal_(enc.model.transformer.resblocks[-1].mlp.c_fc.weight)
        torch.testing.assert_close(enc(tokens), before)


def test_image_tower_returns_every_token_before_ln_post() -> None:
    torch.manual_seed(0)
    enc = ImageEncoder(CLIP_ARCHS["tc-tiny"]).eval()
    img = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        out = enc(img)
        assert out.shape == (2, 50, 64)  # (224 / 32)^2 patches + class token
        torch.nn.init.normal_(enc.model.visual.ln_post.weight)
        torch.testing.assert_close(enc(img), out)
