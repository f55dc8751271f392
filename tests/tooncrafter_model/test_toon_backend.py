"""ToonBackend at the tiny config with seeded random weights: the Interpolator contract, seeding and injected
noise, letterboxing and retiming, cheap identity with a memoised weights hash, speed/memory options that leave
fp32 frames unchanged, and a render through the farm's worker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cluster.config import WorkerConfig
from cluster.jobs import PairJob
from cluster.worker import RenderWorker
from tooncrafter_model import load_backend
from tooncrafter_model.backend import Interpolator, Request, identify
from tooncrafter_model.checkpoint import write_safetensors
from tooncrafter_model.frames import pixel_hash, read_frame, write_frame
from tooncrafter_model.pipeline import TOWERS, SamplingNoise, ToonCrafterPipeline
from tooncrafter_model.tokenizer import BPE_VOCAB
from tooncrafter_model.toon import SHA_MEMO, Fit, ToonBackend, cached_sha256, nearest_frame
from tooncrafter_model.weights import fetch

TINY = {"config": "parity_tiny", "random_weights_seed": 5, "steps": 2}


@pytest.fixture(scope="module")
def toon_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache of this module's own (checkpoint sha256 memos land here) with the tokenizer's vocabulary."""
    cache = tmp_path_factory.mktemp("model-cache")
    shutil.copy(fetch(BPE_VOCAB), cache / BPE_VOCAB.filename)
    return cache


@pytest.fixture(scope="module")
def toon(toon_cache: Path) -> ToonBackend:
    backend = load_backend("toon", **TINY, cache_dir=str(toon_cache))
    assert isinstance(backend, ToonBackend)
    return backend


def pair(h: int = 40, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A gradient background with a dark square that moves from left to right."""
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 120)], -1).astype(np.uint8)
    a, b = bg.copy(), bg.copy()
    a[h // 3 : h // 3 + 8, 4:12] = 10
    b[h // 3 : h // 3 + 8, w - 12 : w - 4] = 10
    return a, b


# ----------------------------------------------------------------------------- the contract


def test_interpolates_one_frame_per_time_at_the_input_size(toon: ToonBackend) -> None:
    assert isinstance(toon, Interpolator) and toon.name == "toon"
    a, b = pair()
    steps: list[dict] = []
    out = toon.interpolate(a, b, [0.25, 0.5, 0.75], seed=1, prompt="a square slides", on_step=steps.append)
    assert [f.shape for f in out] == [(40, 64, 3)] * 3 and all(f.dtype == np.uint8 for f in out)
    assert [s["step"] for s in steps] == [0, 1] and {s["total"] for s in steps} == {2}
    assert steps[-1]["x0_pred"].shape == (1, 4, 8, 8, 8)
    m = out.meta
    assert m["backend"] == "toon" and m["fit"] == "pad" and m["padding"] == "replicate"
    assert m["model_size"] == [64, 64] and m["size"] == [40, 64] and m["content_box"] == [12, 0, 40, 64]
    assert m["generated_index"] == [2, 4, 5] and m["frames_generated"] == 8
    assert (m["steps"], m["cfg"], m["fs"], m["eta"], m["rescale"]) == (2, 7.5, 10, 1.0, 0.7)
    assert (m["dtype"], m["seed"], m["device"], m["noise"]) == ("fp32", 1, "cpu", "seeded")
    assert m["weights"].startswith("random")


def test_same_seed_same_bytes_other_seed_other_frames(toon: ToonBackend) -> None:
    a, b = pair()
    first = toon.interpolate(a, b, [0.5], seed=3)
    assert pixel_hash(first[0]) == pixel_hash(toon.interpolate(a, b, [0.5], seed=3)[0])
    assert pixel_hash(first[0]) != pixel_hash(toon.interpolate(a, b, [0.5], seed=4)[0])
    # the seeded path is "draw SamplingNoise on a CPU generator": injecting that draw gives the same bytes
    noise = SamplingNoise.draw(torch.Generator().manual_seed(3), 8, (8, 8), 2)
    injected = toon.render(toon.check(Request(a, b, (0.5,))), noise=noise)
    assert np.array_equal(injected[0], first[0]) and injected.meta["noise"] == "injected"
    # per-shot params override the constructor's defaults
    more = toon.interpolate(a, b, [0.5], seed=3, params={"steps": 3, "cfg": 1.0})
    assert more.meta["steps"] == 3 and more.meta["cfg"] == 1.0 and not np.array_equal(more[0], first[0])


def test_at_the_model_size_frames_are_the_pipelines_own(toon: ToonBackend) -> None:
    a, b = pair(64, 64)
    clip = toon.pipe.interpolate(a, b, "x", seed=8, steps=2)  # [T, H, W, 3], keyframe slots included
    times = [0.05, 0.3, 0.5, 0.51, 0.95]
    out = toon.interpolate(a, b, times, seed=8, prompt="x")
    assert out.meta["generated_index"] == [1, 2, 4, 4, 6]  # never frame 0 or T-1
    for frame, i in zip(out, out.meta["generated_index"], strict=True):
        assert np.array_equal(frame, clip[i])
    crop = ToonBackend(**TINY, fit="crop", cache_dir=toon.settings.cache_dir)
    cropped = crop.interpolate(a, b, times, seed=8, prompt="x")
    assert all(np.array_equal(f, g) for f, g in zip(cropped, out, strict=True))


def test_nearest_frame_retiming() -> None:
    assert [nearest_frame(t, 16) for t in (0.001, 1 / 15, 0.5, 0.52, 14 / 15, 0.999)] == [1, 1, 8, 8, 14, 14]
    assert [nearest_frame(t, 8) for t in (0.2, 0.4, 0.6, 0.8)] == [1, 3, 4, 6]


# ----------------------------------------------------------------------------- fitting


def test_pad_letterboxes_with_edge_pixels_and_comes_back_exactly() -> None:
    x = torch.rand(1, 3, 32, 64)
    fit = Fit.plan("pad", (32, 64), (64, 64))
    assert (fit.scaled, fit.top, fit.left) == ((32, 64), 16, 0)
    boxed = fit.to_model(x)
    assert boxed.shape == (1, 3, 64, 64)
    assert torch.equal(boxed[:, :, :16], x[:, :, :1].expand(-1, -1, 16, -1))  # top band repeats the top row
    assert torch.equal(boxed[:, :, 48:], x[:, :, -1:].expand(-1, -1, 16, -1))
    assert torch.equal(fit.from_model(boxed), x)
    assert fit.to_model(x, fill="zeros")[:, :, :16].abs().max().item() == 0.0  # sketches: no lines in the bars
    big = Fit.plan("pad", (300, 200), (64, 128))  # taller than the model: bars left and right
    assert (big.scaled, big.top, big.left) == ((64, 43), 0, 42)
    assert big.from_model(big.to_model(torch.rand(1, 3, 300, 200))).shape == (1, 3, 300, 200)


def test_crop_generates_the_centre_and_edge_fills_the_rest() -> None:
    x = torch.rand(1, 3, 32, 128)
    fit = Fit.plan("crop", (32, 128), (64, 64))
    assert (fit.scaled, fit.top, fit.left) == ((64, 256), 0, 96)
    window = fit.to_model(x)
    assert window.shape == (1, 3, 64, 64)
    back = fit.from_model(window)
    assert back.shape == (1, 3, 32, 128)
    assert fit.describe()["crop_box"] == [0, 96, 64, 64]


# ----------------------------------------------------------------------------- identity and settings


def test_identity_is_cheap_and_the_weights_hash_is_memoised(toon: ToonBackend, tmp_path: Path) -> None:
    assert identify("toon", **TINY, cache_dir=toon.settings.cache_dir) == toon.identity()
    assert toon.identity().weights_sha256 == "random-weights:5"
    assert ToonBackend.identify(**TINY, dtype="fp16") != toon.identity()
    assert ToonBackend.identify(**TINY, offload=False, threads=2, decode_frames=1) == toon.identity()  # memory only
    ckpt = tmp_path / "model.safetensors"
    write_safetensors(toon.pipe.model.state_dict(), ckpt)
    cache = tmp_path / "cache"
    real = identify("toon", config="parity_tiny", checkpoint=str(ckpt), cache_dir=str(cache)).weights_sha256
    assert len(real) == 64 and (cache / SHA_MEMO).is_file()
    # the memo answers as long as size and mtime are unchanged: a planted value proves nothing re-hashed
    memo = (cache / SHA_MEMO).read_text().replace(real, "f" * 64)
    (cache / SHA_MEMO).write_text(memo)
    assert cached_sha256(ckpt, cache) == "f" * 64
    os.utime(ckpt, ns=(ckpt.stat().st_atime_ns, ckpt.stat().st_mtime_ns + 1000))
    assert cached_sha256(ckpt, cache) == real


def test_missing_weights_and_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set toon_checkpoint .* or TOONFARM_TOON_CHECKPOINT"):
        load_backend("toon")
    with pytest.raises(ValueError, match="toon_checkpoint"):
        identify("toon", device="cpu")
    cases = [
        ({"checkpoint": str(tmp_path / "nope.ckpt")}, r"nope\.ckpt: no such checkpoint file \(checkpoint\)"),
        ({**TINY, "dtype": "fp8"}, "dtype must be one of fp32, fp16, bf16"),
        ({**TINY, "fit": "stretch"}, "fit must be one of pad, crop"),
        ({**TINY, "steps": 0}, r"steps must be an integer in \[1, 1000\], got 0"),
        ({**TINY, "decode_frames": 0}, r"decode_frames must be an integer >= 1, got 0"),
        ({**TINY, "colour": "red"}, "unknown setting colour"),
        ({**TINY, "device": "cuda:7"} if not torch.cuda.is_available() else {**TINY, "device": "nonsense"}, "device"),
    ]
    for settings, message in cases:
        with pytest.raises(ValueError, match=message):
            ToonBackend(**settings)


def test_bad_requests_are_named(toon: ToonBackend) -> None:
    a, b = pair()
    with pytest.raises(ValueError, match="takes no parameter scale"):
        toon.interpolate(a, b, [0.5], params={"scale": 2})
    with pytest.raises(ValueError, match=r"rescale must be a number in \[0, 1\], got 1.5"):
        toon.interpolate(a, b, [0.5], params={"rescale": 1.5})
    with pytest.raises(ValueError, match="times must lie strictly between 0 and 1"):
        toon.interpolate(a, b, [1.0])
    with pytest.raises(ValueError, match="keyframes differ in size"):
        toon.interpolate(a, b[:20], [0.5])
    assert toon.interpolate(a, b, []) == []  # nothing asked, nothing generated


# ----------------------------------------------------------------------------- speed and memory options


def test_offload_and_decode_chunks_leave_fp32_frames_unchanged(toon: ToonBackend) -> None:
    model = toon.pipe.model
    a, b = pair(64, 64)
    base = toon.pipe.interpolate(a, b, "x", seed=2, steps=2)
    offloaded = ToonCrafterPipeline(model, toon.pipe.tokenizer, offload=TOWERS)
    assert np.array_equal(offloaded.interpolate(a, b, "x", seed=2, steps=2), base)
    assert all(next(getattr(model, n).parameters()).device.type == "cpu" for n in TOWERS)
    roomy = ToonCrafterPipeline(model, toon.pipe.tokenizer, decode_chunk=32)  # chunks >= T: one decoder call
    assert np.array_equal(roomy.interpolate(a, b, "x", seed=2, steps=2), base)
    # a chunk shorter than the clip is NOT a free memory knob: each chunk gets keyframe features at its ends
    short = ToonCrafterPipeline(model, toon.pipe.tokenizer, decode_chunk=4)
    assert not np.array_equal(short.interpolate(a, b, "x", seed=2, steps=2), base)
    with pytest.raises(ValueError, match="only the towers .* can be offloaded, got model"):
        ToonCrafterPipeline(model, toon.pipe.tokenizer, offload=("model",))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: offload moves the towers off the GPU")
def test_offload_on_cuda_matches_and_parks_the_towers(toon: ToonBackend) -> None:
    a, b = pair()
    common = {**TINY, "device": "cuda", "cache_dir": toon.settings.cache_dir}
    parked, resident = ToonBackend(**common, offload=True), ToonBackend(**common, offload=False)
    assert next(parked.pipe.model.embedder.parameters()).device.type == "cpu"
    out = parked.interpolate(a, b, [0.5], seed=1)
    assert np.array_equal(out[0], resident.interpolate(a, b, [0.5], seed=1)[0])
    assert next(parked.pipe.model.embedder.parameters()).device.type == "cpu"


def test_fp16_casts_weights_and_stays_close_to_fp32(toon: ToonBackend) -> None:
    a, b = pair()
    half = ToonBackend(**TINY, dtype="fp16", cache_dir=toon.settings.cache_dir)
    assert next(half.pipe.model.model.parameters()).dtype == torch.float16
    assert half.pipe.model.alphas_cumprod.dtype == torch.float32  # the sampler's schedule stays float32
    low, full = half.interpolate(a, b, [0.5], seed=6), toon.interpolate(a, b, [0.5], seed=6)
    assert low.meta["dtype"] == "fp16" and not np.array_equal(low[0], full[0])
    mse = np.mean((low[0].astype(np.float64) - full[0]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # dB; about 40 measured on this tiny random model


# ----------------------------------------------------------------------------- on the farm


def test_a_render_worker_renders_a_pair_with_toon(toon: ToonBackend, tmp_path: Path) -> None:
    a, b = pair()
    sketch = np.full_like(a, 255)
    sketch[10:30, 30:32] = 0
    paths = [write_frame(tmp_path / name, f) for name, f in (("a.png", a), ("b.png", b), ("s.png", sketch))]
    settings = {**TINY, "cache_dir": toon.settings.cache_dir}
    worker = RenderWorker(WorkerConfig(backend="toon", backend_settings=settings))
    job = PairJob(
        render_key="toonkey", shot="show/seq/sh010", frame_a=str(paths[0]), frame_b=str(paths[1]),
        times=(0.25, 0.5, 0.75), out_dir=str(tmp_path / "renders" / "toonkey"), seed=12, prompt="a square",
        sketches=((0.5, str(paths[2])),), params=(("steps", 2),),
    )
    result = worker.render(job)
    assert result.ok, result.error
    want = toon.interpolate(a, b, job.times, seed=12, prompt="a square", sketches={0.5: sketch}, params={"steps": 2})
    assert list(result.frame_hashes) == [pixel_hash(f) for f in want]
    assert [pixel_hash(read_frame(p)) for p in result.frame_paths] == list(result.frame_hashes)
    assert result.meta["backend"] == "toon" and result.meta["sketch_frames"] == [4]
    assert worker.info().backend == "toon"
