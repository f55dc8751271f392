"""The sketch encoder (ToonCrafter paper, "sketch-based controllable generation"): the released checkpoint's
exact structure, strict loading, hints, and its residuals steering the UNet; through ToonBackend, sketches
change the frames and scale 0 changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tooncrafter_model.checkpoint import CheckpointError, load_strict, write_safetensors
from tooncrafter_model.config import ToonCrafterConfig, UNetConfig
from tooncrafter_model.sketch import SketchControl, SketchEncoder, sketch_hint
from tooncrafter_model.tokenizer import BPE_VOCAB
from tooncrafter_model.toon import ToonBackend, seeded_weights
from tooncrafter_model.unet import per_frame_context
from tooncrafter_model.weights import fetch

TINY = ToonCrafterConfig.parity_tiny()


def read_sketch_keys(path: Path) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or line.startswith("key\t") or not line.strip():
            continue
        key, _kind, _dtype, shape, _numel = line.split("\t")
        out[key] = tuple(int(d) for d in shape.split("x"))
    return out


def tiny_encoder(seed: int = 3) -> SketchEncoder:
    with torch.device("meta"):
        encoder = SketchEncoder(TINY.unet)
    encoder.load_state_dict(seeded_weights(encoder, seed), assign=True)
    return encoder.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- structure and loading


def test_official_structure_matches_the_released_checkpoint(fixtures_dir: Path) -> None:
    expected = read_sketch_keys(fixtures_dir / "SKETCH_KEYS.tsv")
    assert len(expected) == 340
    with torch.device("meta"):
        encoder = SketchEncoder(UNetConfig())
    got = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert sorted(set(expected) - set(got)) == [] and sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if v != expected[k]} == {}
    assert sum(v.numel() for v in encoder.state_dict().values()) == 364_227_952
    # purely 2D: no temporal layer, no fs embedding, no image-prompt K/V
    assert not [k for k in got if "temopral" in k or "fps_embedding" in k or "_ip." in k]


def test_round_trip_through_a_file_loads_strictly(tmp_path: Path) -> None:
    encoder = tiny_encoder()
    sd = encoder.state_dict()
    ckpt = tmp_path / "sketch_encoder.ckpt"
    torch.save({"state_dict": sd}, ckpt)
    with torch.device("meta"):
        loaded = load_strict(SketchEncoder(TINY.unet), ckpt)
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    broken = dict(sd)
    broken.pop("middle_block_out.0.bias")
    write_safetensors(broken, tmp_path / "broken.safetensors")
    message = r"broken\.safetensors: does not match the model .*missing 1 \(e\.g\. middle_block_out\.0\.bias\)"
    with pytest.raises(CheckpointError, match=message):
        load_strict(SketchEncoder(TINY.unet), tmp_path / "broken.safetensors")


def test_residuals_line_up_with_the_unet_skips(tiny_model) -> None:
    unet = tiny_model.model.diffusion_model
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 4, 8, 8, generator=g)
    hint = (torch.rand(8, 1, 64, 64, generator=g) > 0.9).float()
    ctx = torch.randn(1, 77 + 16 * 8, 32, generator=g)
    t = torch.full((8,), 500)
    with torch.no_grad():
        res = tiny_encoder()(x, hint, t, ctx.repeat_interleave(8, 0))
        emb = unet.embed(torch.tensor([500]), None, 1, 8, x.dtype)
        h = torch.cat([x, torch.zeros_like(x)], 1)
        middle, skips = unet.encode(h, emb, per_frame_context(ctx, 8), 1)
    assert [r.shape for r in res] == [s.shape for s in skips] + [middle.shape]
    # the hint matters: another hint, other residuals
    with torch.no_grad():
        other = tiny_encoder()(x, torch.zeros_like(hint), t, ctx.repeat_interleave(8, 0))
    assert (res[0] - other[0]).abs().max().item() > 1e-3


def test_control_scales_and_repeats_context_per_frame() -> None:
    encoder = tiny_encoder()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 8, 8, 8, generator=g)
    ctx = torch.randn(1, 77 + 16 * 8, 32, generator=g)
    hints = torch.zeros(8, 1, 64, 64)
    hints[3, 0, 20:22] = 1.0
    with torch.no_grad():
        full = SketchControl(encoder, hints, 1.0)(x, torch.tensor([300]), ctx)
        half = SketchControl(encoder, hints, 0.5)(x, torch.tensor([300]), ctx)
        direct = encoder(x[0].transpose(0, 1), hints, torch.full((8,), 300), ctx.expand(8, -1, -1))
    for f, h, d in zip(full, half, direct, strict=True):
        torch.testing.assert_close(f, d)
        torch.testing.assert_close(h, 0.5 * d)
    with pytest.raises(ValueError, match="sketch hints cover 8 frames, the clip has 6"):
        SketchControl(encoder, hints)(x[:, :, :6], torch.tensor([300]), ctx)


def test_sketch_hint_is_inverted_luma() -> None:
    sketch = np.full((4, 6, 3), 255, np.uint8)
    sketch[1] = 0  # a black line
    sketch[2] = (255, 0, 0)  # a red line: luma 0.299
    hint = sketch_hint(sketch)
    assert hint.shape == (1, 4, 6) and hint.dtype == torch.float32
    assert hint[0, 0].abs().max().item() == 0.0 and hint[0, 1].min().item() == 1.0
    torch.testing.assert_close(hint[0, 2], torch.full((6,), 1 - 0.299))
    with pytest.raises(ValueError, match="sketch at t=0.5 must be an HxWx3 uint8 RGB array"):
        sketch_hint(sketch.astype(np.float32), "sketch at t=0.5")


# ----------------------------------------------------------------------------- through the backend


@pytest.fixture(scope="module")
def toon_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache of this module's own (checkpoint sha256 memos land here) with the tokenizer's vocabulary."""
    cache = tmp_path_factory.mktemp("model-cache")
    shutil.copy(fetch(BPE_VOCAB), cache / BPE_VOCAB.filename)
    return cache


@pytest.fixture(scope="module")
def backend(toon_cache: Path) -> ToonBackend:
    return ToonBackend(config="parity_tiny", random_weights_seed=11, steps=2, cache_dir=str(toon_cache))


def keys(h: int = 40, w: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 4, yy * 6, np.full_like(xx, 90)], -1).astype(np.uint8)
    b = a[:, ::-1].copy()
    sketch = np.full((h, w, 3), 255, np.uint8)
    sketch[10:12, 8:50] = 0
    sketch[10:30, 30:32] = 0
    return a, b, sketch


def test_sketches_steer_and_scale_zero_changes_nothing(backend: ToonBackend) -> None:
    a, b, sketch = keys()
    times = (0.3, 0.5, 0.7)
    plain = backend.interpolate(a, b, times, seed=4)
    guided = backend.interpolate(a, b, times, seed=4, sketches={0.5: sketch})
    assert guided.meta["sketch_frames"] == [4] and "sketch_frames" not in plain.meta
    assert all(np.abs(p.astype(int) - q).max() > 0 for p, q in zip(plain, guided, strict=True))
    blank = backend.interpolate(a, b, times, seed=4, sketches={0.5: np.full_like(sketch, 255)})
    assert not np.array_equal(blank[1], guided[1])  # the drawing itself matters, not only the encoder
    off = backend.interpolate(a, b, times, seed=4, sketches={0.5: sketch}, params={"sketch_scale": 0})
    assert all(np.array_equal(p, q) for p, q in zip(plain, off, strict=True))


def test_sketch_encoder_loads_from_its_file(backend: ToonBackend, tmp_path: Path, toon_cache: Path) -> None:
    a, b, sketch = keys()
    model_file = tmp_path / "model.safetensors"
    write_safetensors(backend.pipe.model.state_dict(), model_file)
    sketch_file = tmp_path / "sketch_encoder.ckpt"
    torch.save({"state_dict": backend.sketch_encoder.state_dict()}, sketch_file)
    common = {"config": "parity_tiny", "checkpoint": str(model_file), "steps": 2, "cache_dir": str(toon_cache)}
    loaded = ToonBackend(**common, sketch_checkpoint=str(sketch_file))
    want = backend.interpolate(a, b, (0.5,), seed=9, sketches={0.45: sketch})
    got = loaded.interpolate(a, b, (0.5,), seed=9, sketches={0.45: sketch})
    assert np.array_equal(want[0], got[0])
    # without a sketch encoder: identical frames when no sketch is given, a clear error when one is
    bare = ToonBackend(**common)
    assert bare.sketch_encoder is None
    assert np.array_equal(bare.interpolate(a, b, (0.5,), seed=9)[0], backend.interpolate(a, b, (0.5,), seed=9)[0])
    with pytest.raises(ValueError, match="sketches need the sketch encoder: set sketch_checkpoint"):
        bare.interpolate(a, b, (0.5,), sketches={0.5: sketch})


def test_bad_sketches_are_named(backend: ToonBackend) -> None:
    a, b, sketch = keys()
    with pytest.raises(ValueError, match=r"sketch at t=0.5 is \(20, 64\), the keyframes are \(40, 64\)"):
        backend.interpolate(a, b, (0.5,), sketches={0.5: sketch[:20]})
    with pytest.raises(ValueError, match="sketches at t=0.5 and t=0.52 fall on the same frame 4"):
        backend.interpolate(a, b, (0.5,), sketches={0.5: sketch, 0.52: sketch})
    with pytest.raises(ValueError, match="sketch at t=1: times must lie strictly between 0 and 1"):
        backend.interpolate(a, b, (0.5,), sketches={1.0: sketch})
