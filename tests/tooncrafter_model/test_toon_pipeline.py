"""ToonCrafterPipeline at the tiny config: the uint8-in/uint8-out story, seeding, callbacks, CFG batching,
the middle-frame re-decode, preprocessing, and the UNet's control residuals for a future sketch encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tooncrafter_model.pipeline import SamplingNoise, ToonCrafterPipeline, keyframe_clip, preprocess_keyframe
from tooncrafter_model.unet import per_frame_context


@pytest.fixture(scope="module")
def pipe(tiny_model, tokenizer) -> ToonCrafterPipeline:
    return ToonCrafterPipeline(tiny_model, tokenizer)


def keyframes(h: int = 50, w: int = 90) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 40)], -1).astype(np.uint8)
    b = a.copy()
    b[h // 4 : h // 2, w // 2 : w // 2 + 12] = (250, 30, 30)
    return a, b


def test_interpolate_is_seeded_and_reports_every_step(pipe: ToonCrafterPipeline) -> None:
    a, b = keyframes()
    events: list[dict] = []
    out = pipe.interpolate(a, b, "a red square", seed=5, steps=3, on_step=events.append)
    assert out.shape == (8, 64, 64, 3) and out.dtype == np.uint8
    assert [e["step"] for e in events] == [0, 1, 2] and {e["total"] for e in events} == {3}
    assert [e["t"] for e in events] == [999, 666, 332]
    assert events[-1]["x0_pred"].shape == (1, 4, 8, 8, 8)
    again = pipe.interpolate(a, b, "a red square", seed=5, steps=3)
    other = pipe.interpolate(a, b, "a red square", seed=6, steps=3)
    assert np.array_equal(out, again)
    assert not np.array_equal(out, other)
    # the seeded path is exactly "draw SamplingNoise from a CPU generator, then inject it"
    noise = SamplingNoise.draw(torch.Generator().manual_seed(5), 8, (8, 8), 3)
    assert np.array_equal(pipe.interpolate(a, b, "a red square", steps=3, noise=noise), out)


def test_batched_cfg_equals_two_calls(pipe: ToonCrafterPipeline, tiny_model, tokenizer) -> None:
    a, b = (preprocess_keyframe(f, (64, 64)) for f in keyframes())
    video = keyframe_clip(a, b, 8)
    s = pipe.settings(steps=2)
    noise = SamplingNoise.draw(torch.Generator().manual_seed(0), 8, (8, 8), 2)
    batched = pipe.generate(video, "walking man", s, noise)
    separate = ToonCrafterPipeline(tiny_model, tokenizer, batch_cfg=False).generate(video, "walking man", s, noise)
    torch.testing.assert_close(batched, separate, atol=1e-4, rtol=1e-4)
    unguided = pipe.generate(video, "walking man", pipe.settings(steps=2, guidance_scale=1.0), noise)
    assert (unguided - batched).abs().max().item() > 1e-3


def test_middle_frames_come_from_the_shorter_window(pipe: ToonCrafterPipeline) -> None:
    g = torch.Generator().manual_seed(3)
    latents = torch.randn(1, 4, 8, 8, 8, generator=g)
    refs = [torch.randn(1, c, 2, s, s, generator=g) for c, s in ((32, 64), (32, 32), (64, 16), (64, 8), (32, 64))]
    with torch.no_grad():
        video = pipe.decode(latents, refs)
        vae = pipe.model.first_stage_model
        full = vae.decode(latents, refs, 8)
        short = vae.decode(latents[:, :, [0, 2, 3, 4, 5, 7]], refs, 8)
    torch.testing.assert_close(video[:, :, [0, 1, 2, 5, 6, 7]], full[:, :, [0, 1, 2, 5, 6, 7]])
    torch.testing.assert_close(video[:, :, 3:5], short[:, :, 2:4])
    assert (full[:, :, 3:5] - short[:, :, 2:4]).abs().max().item() > 1e-4


def test_decoding_a_few_frames_at_a_time_gives_the_same_frames(pipe: ToonCrafterPipeline) -> None:
    """The per-frame layers may take any slice of the clip (3 + 3 + 2 here): a memory bound, not a numerics one.

    Single frames differ in the last bits (4.5e-6 of 5.2 here): a batch-1 conv takes another CPU kernel."""
    g = torch.Generator().manual_seed(4)
    latents = torch.randn(1, 4, 8, 8, 8, generator=g)
    refs = [torch.randn(1, c, 2, s, s, generator=g) for c, s in ((32, 64), (32, 32), (64, 16), (64, 8), (32, 64))]
    vae = pipe.model.first_stage_model
    with torch.no_grad():
        whole = vae.decode(latents, refs, 8, None)
        for frames in (1, 3, 8):
            torch.testing.assert_close(vae.decode(latents, refs, 8, frames), whole, atol=1e-5, rtol=1e-5)
    assert pipe.decode_frames == 4  # the default the full-size VRAM estimate was taken with


def test_preprocess_covers_and_center_crops() -> None:
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # a white band in the middle third
    x = preprocess_keyframe(wide, (64, 64))
    assert x.shape == (3, 64, 64) and x.min().item() >= -1.0 and x.max().item() <= 1.0
    assert x[:, :, 5:59].min().item() > 0.99  # the crop kept the centre band
    tall = np.full((300, 20, 3), 128, np.uint8)  # narrower than the target: scaled up to cover, never padded
    assert preprocess_keyframe(tall, (64, 128)).sub(128 / 127.5 - 1).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        preprocess_keyframe(np.zeros((10, 10, 3), np.float32), (64, 64))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        preprocess_keyframe(np.zeros((10, 10), np.uint8), (64, 64))


def test_wrong_noise_shapes_are_named(pipe: ToonCrafterPipeline) -> None:
    a, b = keyframes()
    noise = SamplingNoise.draw(torch.Generator().manual_seed(0), 6, (8, 8), 2)
    with pytest.raises(ValueError, match=r"noise\.vae has shape \(6, 4, 8, 8\), expected \(8, 4, 8, 8\)"):
        pipe.interpolate(a, b, steps=2, noise=noise)
    short = SamplingNoise.draw(torch.Generator().manual_seed(0), 8, (8, 8), 1)
    with pytest.raises(ValueError, match=r"noise\.steps has 1 tensors, the run needs 2"):
        pipe.interpolate(a, b, steps=2, noise=short)


def test_control_residuals_reach_every_skip_and_the_middle(tiny_model) -> None:
    unet = tiny_model.model.diffusion_model
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 8, 8, 8, 8, generator=g)
    ctx = torch.randn(1, 77 + 16 * 8, 32, generator=g)
    t = torch.tensor([500])
    with torch.no_grad():
        emb = unet.embed(t, None, 1, 8, x.dtype)
        h = x.permute(0, 2, 1, 3, 4).reshape(8, 8, 8, 8)
        _, skips = unet.encode(h, emb, per_frame_context(ctx, 8), 1)
        zeros = [torch.zeros_like(s) for s in skips] + [torch.zeros(8, 64, 2, 2)]
        base = unet(x, t, ctx)
        torch.testing.assert_close(unet(x, t, ctx, control=zeros), base)
        for i in (0, len(zeros) - 1):  # first skip and the middle residual
            bumped = list(zeros)
            bumped[i] = torch.randn(bumped[i].shape, generator=g)  # not a constant: GroupNorm would remove it
            assert (unet(x, t, ctx, control=bumped) - base).abs().max().item() > 1e-3
        with pytest.raises(ValueError, match="control needs 10 residuals, got 9"):
            unet(x, t, ctx, control=zeros[:-1])
