"""ToonCrafter behind the `Interpolator` protocol: any keyframe size in, one frame per requested time out.

The model makes a fixed clip of T frames (16) at its own size (320x512) whose first and last frames approximate
the keyframes. This adapter handles the foreign conventions:

- **Size.** Keyframes of another aspect ratio are letterboxed (`fit="pad"`, the default): scaled to fit inside
  the model's size and padded by repeating their edge pixels, so the model sees a plausible continuation
  instead of bars it would try to animate; afterwards the padding is cut off and the frames are resized back
  to the input size. `fit="crop"` is the reference's scale-to-cover + centre crop: nothing outside the crop is
  generated, and those bands are filled by repeating the generated frame's edge.
- **Time.** Generated frame i sits at time i/(T-1). Each requested time takes the nearest generated interior
  frame (1..T-2), never a blend of two: blending neighbours of a cartoon cross-dissolves two drawings into a
  double-exposed ghost, while a repeated drawing is how animation is timed anyway (on 2s, on 3s).
- **Sketches** (`sketches={t: frame}`) go to the nearest generated frame as the sketch encoder's hint (a
  ControlNet-style adapter, see sketch.py).

Output is a pure function of (keyframes, prompt, seed, params, settings): the noise is drawn from a CPU generator
seeded with `seed`, the same on every device.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tooncrafter_model.backend import (
    BACKENDS,
    BackendError,
    BackendIdentity,
    Interpolator,
    Param,
    Request,
    check_params,
    config_hash,
    settings_from,
)
from tooncrafter_model.checkpoint import load_strict
from tooncrafter_model.config import ToonCrafterConfig, from_yaml
from tooncrafter_model.ddim import schedule_arrays
from tooncrafter_model.frames import Frame, Frames
from tooncrafter_model.pipeline import (
    TOWERS,
    SamplingNoise,
    ToonCrafterModel,
    ToonCrafterPipeline,
    build_model,
    cover,
    keyframe_clip,
)
from tooncrafter_model.sketch import DEFAULT_SCALE, SketchControl, SketchEncoder, sketch_hint
from tooncrafter_model.store import sha256_file, write_json
from tooncrafter_model.tokenizer import BPETokenizer
from tooncrafter_model.weights import default_cache_dir

PRESETS = {"official_512": ToonCrafterConfig.official_512, "parity_tiny": ToonCrafterConfig.parity_tiny}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
FITS = ("pad", "crop")
# per-shot parameter -> DDIMConfig field
SAMPLER_PARAMS = {"steps": "steps", "eta": "eta", "cfg": "guidance_scale", "rescale": "guidance_rescale", "fs": "fs"}
NO_CHECKPOINT = (
    "the toon backend needs the ToonCrafter weights: set toon_checkpoint (toonfarm.toml) or "
    "TOONFARM_TOON_CHECKPOINT to model.ckpt or a converted .safetensors"
)

# ---------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToonSettings:
    """Everything `ToonBackend` can be built with (all keyword, all optional but the weights).

    `random_weights_seed` is for tests and benchmarks only: seeded random weights, the output is noise.
    """

    checkpoint: str | None = None  # model.ckpt or .safetensors, loaded strictly
    config: str | None = None  # a model YAML or a preset name ("official_512", "parity_tiny"); default official
    sketch_checkpoint: str | None = None  # sketch_encoder.ckpt (or .safetensors); needed for sketches
    device: str = "cpu"
    dtype: str = "fp32"  # "fp16"/"bf16": weights cast to it and run under autocast
    offload: bool = True  # on CUDA: text/image towers wait on the CPU, on the device only while encoding
    decode_frames: int = 4  # frames the decoder's per-frame layers take at once: peak memory, not pixels
    threads: int | None = None  # torch CPU threads of this process
    cache_dir: str | None = None  # model cache (tokenizer vocabulary, checkpoint sha256 memo)
    # defaults of the per-shot parameters (run.sh's), which the registry lists with their ranges
    steps: int = 50
    eta: float = 1.0
    cfg: float = 7.5
    rescale: float = 0.7
    fs: int = 10
    sketch_scale: float = DEFAULT_SCALE
    fit: str = "pad"
    random_weights_seed: int | None = None

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> ToonSettings:
        """Settings from keyword arguments; unknown names and bad values raise one BackendError line."""
        s = settings_from(cls, "toon", settings)
        check_params("toon", s.sampling())
        if s.dtype not in DTYPES:
            raise BackendError(f"toon: dtype must be one of {', '.join(DTYPES)}, got {s.dtype!r}")
        if s.fit not in FITS:
            raise BackendError(f"toon: fit must be one of {', '.join(FITS)}, got {s.fit!r}")
        for name, low, value in (("threads", 1, s.threads), ("decode_frames", 1, s.decode_frames),
                                 ("random_weights_seed", 0, s.random_weights_seed)):
            if value is not None:
                Param(int, low).check("toon", name, value)
        if s.checkpoint is None and s.random_weights_seed is None:
            raise BackendError(NO_CHECKPOINT)
        for name in ("checkpoint", "sketch_checkpoint"):
            path = getattr(s, name)
            if path is not None and not Path(path).is_file():
                raise BackendError(f"{path}: no such checkpoint file ({name})")
        return s

    def sampling(self) -> dict[str, Any]:
        """The default per-shot values, overridden per call by `params`: one per parameter the registry lists."""
        return {k: getattr(self, k) for k in BACKENDS["toon"].params}

    def model_config(self) -> ToonCrafterConfig:
        """The typed model config: a preset by name, else the YAML at `config`."""
        if self.config is None:
            return ToonCrafterConfig.official_512()
        if self.config in PRESETS:
            return PRESETS[self.config]()
        return from_yaml(self.config)


# ---------------------------------------------------------------------------------------------------
# Weights: identity and seeded random weights
# ---------------------------------------------------------------------------------------------------

SHA_MEMO = "sha256-memo.json"


def cached_sha256(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of a weights file, memoised in the model cache by (path, size, mtime_ns): a 10.5 GB checkpoint
    is hashed once, not every time a batch is planned."""
    p = Path(path).resolve()
    st = p.stat()
    memo_path = Path(cache_dir) if cache_dir else default_cache_dir()
    memo_path = memo_path / SHA_MEMO
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        memo = json.loads(memo_path.read_text())
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(p))
    if isinstance(entry, dict) and {k: entry.get(k) for k in stamp} == stamp and isinstance(entry.get("sha256"), str):
        return str(entry["sha256"])
    digest = sha256_file(p)
    memo[str(p)] = {**stamp, "sha256": digest}
    write_json(memo_path, memo, indent=1)  # concurrent writers: the last one wins, every entry it holds is right
    return digest


def seeded_weights(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random parameters for `module` (may be on the meta device), the same whatever the build order or device:
    N(0, 1) per key from a generator seeded by (seed, crc32(key)); norm scales 1 + 0.1x, other vectors 0.1x,
    matrices / sqrt(fan_in). For tests and benchmarks only: such a model makes noise."""
    out = {}
    for key, p in module.named_parameters():
        g = torch.Generator().manual_seed((seed * 1000003 + zlib.crc32(key.encode())) % 2**62)
        x = torch.randn(tuple(p.shape), generator=g)
        if key.endswith("mix_factor"):
            out[key] = x
        elif x.ndim <= 1:
            out[key] = 1.0 + 0.1 * x if key.endswith(".weight") else 0.1 * x
        else:
            out[key] = x / math.sqrt(math.prod(x.shape[1:]))
    return out


def _random_model(cfg: ToonCrafterConfig, seed: int) -> ToonCrafterModel:
    model = build_model(cfg, device="meta")
    sd = seeded_weights(model, seed)
    sd.update(schedule_arrays(cfg.sampler))
    model.load_state_dict(sd, strict=True, assign=True)
    return model


# ---------------------------------------------------------------------------------------------------
# Fitting frames to the model's size and back
# ---------------------------------------------------------------------------------------------------


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass(frozen=True)
class Fit:
    """How an input of `size` maps onto the model's `model` size: scaled to `scaled`, placed at (top, left)
    inside it ("pad"), or the model's window placed at (top, left) inside it ("crop")."""

    mode: str
    size: tuple[int, int]
    model: tuple[int, int]
    scaled: tuple[int, int]
    top: int
    left: int

    @classmethod
    def plan(cls, mode: str, size: tuple[int, int], model: tuple[int, int]) -> Fit:
        (h, w), (th, tw) = size, model
        if mode == "pad":
            s = min(th / h, tw / w)
            rh, rw = min(th, max(1, round(h * s))), min(tw, max(1, round(w * s)))
            return cls(mode, size, model, (rh, rw), (th - rh) // 2, (tw - rw) // 2)
        rh, rw = cover(size, model)
        return cls(mode, size, model, (rh, rw), (rh - th) // 2, (rw - tw) // 2)

    def to_model(self, x: torch.Tensor, fill: str = "replicate") -> torch.Tensor:
        """[N, C, h, w] in [0, 1] -> [N, C, H, W] at the model's size; `fill` is "replicate" or "zeros"."""
        (th, tw), (rh, rw) = self.model, self.scaled
        x = _resize(x, self.scaled).clamp(0.0, 1.0)
        if self.mode == "crop":
            return x[:, :, self.top : self.top + th, self.left : self.left + tw]
        pad = (self.left, tw - rw - self.left, self.top, th - rh - self.top)
        if not any(pad):
            return x
        return F.pad(x, pad, mode="replicate") if fill == "replicate" else F.pad(x, pad)

    def from_model(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] at the model's size -> [N, C, h, w] at the input's size (padding removed / bands filled)."""
        (th, tw), (rh, rw) = self.model, self.scaled
        if self.mode == "pad":
            x = x[:, :, self.top : self.top + rh, self.left : self.left + rw]
        elif (rh, rw) != (th, tw):
            x = F.pad(x, (self.left, rw - tw - self.left, self.top, rh - th - self.top), mode="replicate")
        return _resize(x, self.size)

    def describe(self) -> dict[str, object]:
        """For Frames.meta: the box in model pixels that holds the picture ("pad") or the generated window in
        scaled-input pixels ("crop"), as [top, left, height, width]."""
        if self.mode == "pad":
            box = [self.top, self.left, *self.scaled]
            return {"fit": "pad", "padding": "replicate", "content_box": box, "scaled_size": list(self.scaled)}
        box = [self.top, self.left, *self.model]
        return {"fit": "crop", "crop_box": box, "scaled_size": list(self.scaled), "outside_crop": "edge-filled"}


def nearest_frame(t: float, frames: int) -> int:
    """The interior generated frame (1..T-2) nearest to time t; frame i sits at i / (T - 1)."""
    return min(frames - 2, max(1, math.floor(float(t) * (frames - 1) + 0.5)))


def _to_unit(frame: Frame) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255.0


# ---------------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------------


class ToonBackend(Interpolator):
    """ToonCrafter (official checkpoint, strict load) as a farm backend; see the module docstring."""

    name = "toon"

    def __init__(self, **settings: Any) -> None:
        s = self.settings = ToonSettings.parse(settings)
        self.device = _device(s.device)
        if s.threads is not None:
            torch.set_num_threads(s.threads)  # the process's pool: one backend per actor process
        self.config = cfg = s.model_config()
        if s.checkpoint is not None:
            model = load_strict(build_model(cfg, device="meta"), s.checkpoint)
        else:
            model = _random_model(cfg, int(s.random_weights_seed or 0))
        self.sketch_encoder = self._sketch_encoder(cfg)
        weights = DTYPES[s.dtype] if s.dtype != "fp32" else None
        offload = TOWERS if s.offload and self.device.type == "cuda" else ()
        _place(model, self.device, weights, offload)
        if self.sketch_encoder is not None:
            self.sketch_encoder.to(device=self.device, dtype=weights)
        self.pipe = ToonCrafterPipeline(
            model, BPETokenizer.from_cache(s.cache_dir), autocast_dtype=weights, offload=offload,
            decode_frames=s.decode_frames,
        )
        self._identity = self.identify(**settings)

    def _sketch_encoder(self, cfg: ToonCrafterConfig) -> SketchEncoder | None:
        s = self.settings
        if s.sketch_checkpoint is None and s.random_weights_seed is None:
            return None
        with torch.device("meta"):
            encoder = SketchEncoder(cfg.unet)
        if s.sketch_checkpoint is not None:
            load_strict(encoder, s.sketch_checkpoint)
        else:
            encoder.load_state_dict(seeded_weights(encoder, int(s.random_weights_seed or 0)), assign=True)
        return encoder.eval().requires_grad_(False)

    # -- identity ----------------------------------------------------------------------------------

    @classmethod
    def identify(cls, **settings: Any) -> BackendIdentity:
        """The identity a backend built with these settings reports; builds nothing, hashes weights once."""
        s = ToonSettings.parse(settings)
        random = f"random-weights:{s.random_weights_seed}"
        weights = cached_sha256(s.checkpoint, s.cache_dir) if s.checkpoint else random
        sketch = cached_sha256(s.sketch_checkpoint, s.cache_dir) if s.sketch_checkpoint else None
        if sketch is None and s.random_weights_seed is not None:
            sketch = random
        # what changes pixels; device, threads, offload and decode_frames only move float rounding or memory
        pixels = {
            "model": asdict(s.model_config()), "dtype": s.dtype, "fit": s.fit, "pad": "replicate",
            "retime": "nearest", "defaults": s.sampling(), "sketch_weights": sketch,
        }
        return BackendIdentity(cls.name, weights_sha256=weights, config_hash=config_hash(pixels))

    def identity(self) -> BackendIdentity:
        """Name, weights sha256 and the hash of the settings that change pixels."""
        return self._identity

    # -- interpolation -----------------------------------------------------------------------------

    def render(self, request: Request, noise: SamplingNoise | None = None) -> Frames:
        """One frame per t in `times`, each the nearest generated frame; `noise` replaces the seeded draw."""
        start = time.perf_counter()
        # 0. defaults (the request is checked already)
        frame_a, frame_b, times, seed = request.frame_a, request.frame_b, request.times, request.seed
        values = {**self.settings.sampling(), **request.params}
        ddim = replace(self.pipe.settings(), **{field: values[k] for k, field in SAMPLER_PARAMS.items()})
        cfg, frames = self.config, self.config.frames
        fit = Fit.plan(self.settings.fit, frame_a.shape[:2], cfg.image_size)
        control, sketch_meta = self._control(request.sketches, fit, values["sketch_scale"])
        if not times:
            return Frames(meta={"backend": self.name, "frames_generated": 0})
        # 1. keyframes -> the model's clip in [-1, 1]
        a, b = ((fit.to_model(_to_unit(f))[0] - 0.5) / 0.5 for f in (frame_a, frame_b))
        video = keyframe_clip(a, b, frames)
        # 2. noise: drawn on the CPU from the seed, the same on every device
        injected = noise is not None
        if noise is None:
            noise = SamplingNoise.draw(torch.Generator().manual_seed(int(seed)), frames, cfg.latent_size, ddim.steps)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        # 3. generate T frames
        out = self.pipe.generate(video, request.prompt, ddim, noise, request.on_step, control)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"toon: the model produced non-finite values (dtype {self.settings.dtype}); try fp32")
        # 4. retime to the requested times, back to the input's size, uint8 (truncating, like the reference)
        picks = [nearest_frame(t, frames) for t in times]
        chosen = fit.from_model(out[0, :, picks].transpose(0, 1).float())  # c n h w -> n c h w
        pixels = ((chosen.clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        meta: dict[str, object] = {
            "backend": self.name, "size": list(frame_a.shape[:2]), "model_size": list(cfg.image_size),
            "frames_generated": frames, "generated_index": picks, "retime": "nearest generated frame",
            **fit.describe(), **values, "dtype": self.settings.dtype, "seed": int(seed), "device": str(self.device),
            "noise": "injected" if injected else "seeded", **sketch_meta,
            "weights": "random (noise; tests only)" if self.settings.checkpoint is None else "checkpoint",
            "seconds": round(time.perf_counter() - start, 4),
        }
        if self.device.type == "cuda":
            meta["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        return Frames([np.ascontiguousarray(p) for p in pixels], meta)

    def _control(
        self, sketches: Mapping[float, Frame], fit: Fit, scale: float
    ) -> tuple[SketchControl | None, dict[str, object]]:
        """The sketch encoder's control for this clip (None when no sketch or scale 0) and its meta."""
        if not sketches:
            return None, {}
        if self.sketch_encoder is None:
            raise BackendError("toon: sketches need the sketch encoder: set sketch_checkpoint (sketch_encoder.ckpt)")
        frames = self.config.frames
        at: dict[int, float] = {}
        hints = torch.zeros(frames, 1, *self.config.image_size)
        for t, sketch in sorted(sketches.items()):
            what = f"sketch at t={float(t):g}"
            i = nearest_frame(t, frames)
            if i in at:
                raise BackendError(f"toon: sketches at t={at[i]:g} and t={float(t):g} fall on the same frame {i}")
            at[i] = float(t)
            hints[i] = fit.to_model(sketch_hint(sketch, what)[None], fill="zeros")[0]
        meta: dict[str, object] = {"sketch_frames": sorted(at)}
        if scale == 0.0:
            return None, {**meta, "sketch_note": "sketch_scale 0: sketches not applied"}
        return SketchControl(self.sketch_encoder, hints, scale), meta


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise BackendError(f"toon: device {name!r} is not a torch device ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"toon: device {name!r} requested but torch sees no CUDA device")
    return device


def _place(model: ToonCrafterModel, device: torch.device, dtype: torch.dtype | None, on_cpu: Sequence[str]) -> None:
    """Each network to `device` (the `on_cpu` ones to the CPU) with weights cast to `dtype`; the schedule buffers
    stay float32 (the sampler reads them)."""
    for name, child in model.named_children():
        child.to(device=torch.device("cpu") if name in on_cpu else device, dtype=dtype)
    for name, buf in list(model.named_buffers(recurse=False)):
        setattr(model, name, buf.to(device))
