"""The whole ToonCrafter model (`build_model`) and the interpolation pipeline that runs it, as the
reference's `run.sh` does.

`ToonCrafterModel`'s attribute names are the checkpoint's top-level prefixes (`model.diffusion_model`,
`first_stage_model`, `cond_stage_model`, `embedder`, `image_proj_model`, plus the 13 schedule buffers), so the
official `model.ckpt` loads with strict=True. `ToonCrafterPipeline.interpolate` is the numbered story.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tooncrafter_model.clip import ImageEncoder, TextEncoder
from tooncrafter_model.config import DDIMConfig, ToonCrafterConfig, from_yaml
from tooncrafter_model.ddim import DDIMSchedule, guidance, schedule_arrays
from tooncrafter_model.dualref_decoder import AutoencoderKLDualRef
from tooncrafter_model.resampler import Resampler
from tooncrafter_model.tokenizer import BPETokenizer
from tooncrafter_model.unet import UNet
from tooncrafter_model.vae import sample_posterior, split_posterior

OnStep = Callable[[dict[str, Any]], None]
# (x_t [B, 4, T, h, w], t [B], context [B, L, C]) -> the UNet's control residuals in (b t) layout
Control = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Sequence[torch.Tensor]]
# the conditioning towers: used once per interpolation, before sampling, so they can wait on the CPU
TOWERS = ("cond_stage_model", "embedder", "image_proj_model")

# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------


class DiffusionWrapper(nn.Module):
    """Hybrid conditioning: UNet(concat([x_t, c_concat], channels), t, cross-attention context, fs)."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.diffusion_model = unet

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        c_concat: torch.Tensor,
        context: torch.Tensor,
        fs: torch.Tensor | None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        return self.diffusion_model(torch.cat([x, c_concat], dim=1), t, context, fs, control)


class ToonCrafterModel(nn.Module):
    """Every network and the schedule buffers, laid out as the official checkpoint's state dict."""

    def __init__(self, cfg: ToonCrafterConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = DiffusionWrapper(UNet(cfg.unet))
        self.first_stage_model = AutoencoderKLDualRef(cfg.vae)
        self.cond_stage_model = TextEncoder(cfg.clip)
        self.embedder = ImageEncoder(cfg.clip)
        self.image_proj_model = Resampler(cfg.resampler)
        for name, value in schedule_arrays(cfg.sampler).items():
            self.register_buffer(name, value)

    def schedule(self) -> DDIMSchedule:
        """The DDIM schedule read from this model's buffers (CPU copies)."""
        b = {k: getattr(self, k).detach().float().cpu() for k in ("alphas_cumprod", "sqrt_alphas_cumprod",
                                                                  "sqrt_one_minus_alphas_cumprod", "scale_arr")}
        return DDIMSchedule(**b)


def build_model(
    config: ToonCrafterConfig | str | os.PathLike[str] | Mapping[str, Any], device: str | torch.device = "cpu"
) -> ToonCrafterModel:
    """Build ToonCrafter in eval mode from a config, the reference YAML's path, or its dict.

    `device="meta"` builds the structure without memory (for key checks, or before `load_strict`).
    """
    cfg = config if isinstance(config, ToonCrafterConfig) else from_yaml(config)
    cfg.validate()
    with torch.device(device):
        model = ToonCrafterModel(cfg)
    return model.to(device).eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------
# Noise and pre/post-processing
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingNoise:
    """Every random tensor of one run, in the order the reference consumes them."""

    vae: torch.Tensor  # posterior noise for all T frames [T, 4, h, w]
    x_T: torch.Tensor  # [1, 4, T, h, w]
    steps: tuple[torch.Tensor, ...]  # one [1, 4, T, h, w] per DDIM step

    @classmethod
    def draw(
        cls, generator: torch.Generator, frames: int, latent_hw: tuple[int, int], steps: int, channels: int = 4
    ) -> SamplingNoise:
        """Draw vae, x_T, then one tensor per step from a CPU generator (the same on every device)."""
        h, w = latent_hw
        vae = torch.randn(frames, channels, h, w, generator=generator)
        x_t = torch.randn(1, channels, frames, h, w, generator=generator)
        per_step = tuple(torch.randn(1, channels, frames, h, w, generator=generator) for _ in range(steps))
        return cls(vae, x_t, per_step)


def cover(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(h, w) `size` scaled to cover `target`: the smallest scaled size that contains it (the reference
    resizes so, then centre-crops)."""
    (h, w), (th, tw) = size, target
    scale = max(th / h, tw / w)
    return max(th, round(h * scale)), max(tw, round(w * scale))


def preprocess_keyframe(frame: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 HxWx3 of any size -> [3, H, W] float in [-1, 1]: scale to cover `size` (antialiased), center-crop.

    For inputs at least as wide as the target aspect this equals the reference's Resize(short side) +
    CenterCrop; narrower inputs are scaled up to cover instead of being zero-padded.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {getattr(frame, 'shape', '')}"
        raise ValueError(f"keyframe must be an HxWx3 uint8 array, got {got}")
    th, tw = size
    h, w = frame.shape[:2]
    rh, rw = cover((h, w), size)
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float() / 255.0
    if (rh, rw) != (h, w):
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True).clamp(0.0, 1.0)
    top, left = (rh - th) // 2, (rw - tw) // 2
    x = x[0, :, top : top + th, left : left + tw]
    return (x - 0.5) / 0.5


def postprocess_video(video: torch.Tensor) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> [T, H, W, 3] uint8, truncating like the reference."""
    x = (video[0].float().clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0
    return x.to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()


def keyframe_clip(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """Two [3, H, W] keyframes -> [1, 3, T, H, W]: T/2 copies of A, then copies of B."""
    half = frames // 2
    return torch.stack([a] * half + [b] * (frames - half), dim=1)[None]


# ---------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------


class ToonCrafterPipeline:
    """Keyframe pair + prompt -> T frames. Settings default to the config's sampler (run.sh values)."""

    def __init__(
        self,
        model: ToonCrafterModel,
        tokenizer: Callable[[Sequence[str]], torch.Tensor] | None = None,
        *,
        autocast_dtype: torch.dtype | None = None,
        batch_cfg: bool = True,
        decode_chunk: int | None = None,
        decode_frames: int | None = 4,
        offload: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.config = model.config
        self.tokenizer = tokenizer if tokenizer is not None else BPETokenizer.from_cache()
        self.schedule = model.schedule()
        self.autocast_dtype = autocast_dtype  # e.g. torch.float16 on CUDA, like the reference run
        self.batch_cfg = batch_cfg  # cond and uncond in one UNet call
        # frames per decoder call; part of the numerics (each call adds the keyframe features to its own first
        # and last frame), so only values >= T leave the output unchanged
        self.decode_chunk = decode_chunk or self.config.unet.temporal_length
        # frames the decoder's per-frame layers take at once: bounds the decode's peak memory, same numbers
        self.decode_frames = decode_frames
        unknown = sorted(set(offload) - set(TOWERS))
        if unknown:
            raise ValueError(f"offload: only the towers {', '.join(TOWERS)} can be offloaded, got {', '.join(unknown)}")
        self.offload = tuple(offload)  # kept on the CPU, moved to the device only while they encode

    @property
    def device(self) -> torch.device:
        return self.model.betas.device

    def settings(self, **overrides: Any) -> DDIMConfig:
        """The sampler settings with every non-None override applied."""
        return replace(self.config.sampler, **{k: v for k, v in overrides.items() if v is not None})

    def _autocast(self) -> Any:
        enabled = self.autocast_dtype is not None and self.autocast_dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=enabled)

    @contextmanager
    def _towers_on_device(self) -> Iterator[None]:
        """Move the offloaded towers to the device for the encode step, and back to the CPU afterwards."""
        modules = [getattr(self.model, name) for name in self.offload]
        for module in modules:
            module.to(self.device)
        try:
            yield
        finally:
            for module in modules:
                module.to("cpu")

    # -- the story ----------------------------------------------------------------------------------

    @torch.no_grad()
    def interpolate(
        self,
        frame_a: np.ndarray,
        frame_b: np.ndarray,
        prompt: str = "",
        *,
        seed: int = 123,
        steps: int | None = None,
        eta: float | None = None,
        guidance_scale: float | None = None,
        guidance_rescale: float | None = None,
        fs: int | None = None,
        noise: SamplingNoise | None = None,
        on_step: OnStep | None = None,
    ) -> np.ndarray:
        """Two uint8 keyframes (any size) -> [T, H, W, 3] uint8 frames at the model's size, keyframes included."""
        # 0. defaults
        s = self.settings(steps=steps, eta=eta, guidance_scale=guidance_scale, guidance_rescale=guidance_rescale, fs=fs)
        # 1. check inputs and preprocess them into the keyframe clip
        size = self.config.image_size
        a, b = preprocess_keyframe(frame_a, size), preprocess_keyframe(frame_b, size)
        video = keyframe_clip(a, b, self.config.frames)
        if noise is None:
            generator = torch.Generator().manual_seed(seed)
            noise = SamplingNoise.draw(generator, self.config.frames, self.config.latent_size, s.steps)
        # 2.-5. encode, prepare latents, denoise, decode
        out = self.generate(video, prompt, s, noise, on_step)
        # 6. postprocess
        return postprocess_video(out)

    @torch.no_grad()
    def generate(
        self,
        video: torch.Tensor,
        prompt: str,
        s: DDIMConfig,
        noise: SamplingNoise,
        on_step: OnStep | None = None,
        control: Control | None = None,
    ) -> torch.Tensor:
        """Keyframe clip [1, 3, T, H, W] in [-1, 1] -> decoded video [1, 3, T, H, W] (not clamped).

        `control` (e.g. the sketch encoder) gives residuals for the UNet at every step, both CFG branches.
        """
        self.check_clip(video, noise, s)
        video = video.to(self.device)
        with self._autocast():
            # 2. encode text and the first keyframe: context = [text(prompt); resampler(A)], uncond = [""; zeros]
            with self._towers_on_device():
                context, uncond = self.encode_context(video[:, :, 0], prompt)
            # 3. keyframe latents (posterior samples with the injected noise) -> concat latents, reference features
            c_concat, ref_context = self.encode_keyframes(video, noise.vae)
            # 4. denoise from x_T
            latents = self.denoise(noise.x_T, c_concat, context, uncond, s, noise.steps, on_step, control)
            # 5. decode in frame chunks, then re-decode the two middle frames in a shorter window
            return self.decode(latents, ref_context).float()

    # -- steps ------------------------------------------------------------------------------------

    def check_clip(self, video: torch.Tensor, noise: SamplingNoise, s: DDIMConfig) -> None:
        """Shapes of the clip and of every injected noise tensor must match the model's config."""
        t, (h, w) = self.config.frames, self.config.latent_size
        expect = {"video": (1, 3, t, 8 * h, 8 * w), "noise.vae": (t, 4, h, w), "noise.x_T": (1, 4, t, h, w)}
        got = {"video": tuple(video.shape), "noise.vae": tuple(noise.vae.shape), "noise.x_T": tuple(noise.x_T.shape)}
        for name, shape in expect.items():
            if got[name] != shape:
                raise ValueError(f"{name} has shape {got[name]}, expected {shape}")
        if len(noise.steps) < s.steps:
            raise ValueError(f"noise.steps has {len(noise.steps)} tensors, the run needs {s.steps}")
        if t < 4:
            raise ValueError(f"ToonCrafter needs at least 4 frames (6+ recommended), config has {t}")

    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> [N, 77, C] penultimate-layer text states."""
        tokens = self.tokenizer(list(prompts)).to(self.device)
        return self.model.cond_stage_model(tokens)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> Resampler tokens [N, 16*T, C]."""
        return self.model.image_proj_model(self.model.embedder(images))

    def encode_context(self, first: torch.Tensor, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(context, uncond): [text(prompt); resampler(first)] and [text(""); resampler(zeros)], [1, 77+16T, C]."""
        text = self.encode_text([prompt, ""])
        image = self.encode_image(torch.cat([first, torch.zeros_like(first)]))
        return torch.cat([text[:1], image[:1]], dim=1), torch.cat([text[1:], image[1:]], dim=1)

    def encode_keyframes(self, video: torch.Tensor, vae_noise: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(c_concat [1, 4, T, h, w] holding the keyframe latents at frames 0 and T-1, 5 feature maps [1, C, 2, *, *]).

        The reference encodes all T frames but only ever uses the first and the last; every encoder op is
        per frame, so encoding those two (with their posterior noise) gives the same numbers for 2/T the work.
        """
        ends = video[0, :, [0, -1]].transpose(0, 1)  # c k h w -> k c h w, k = (A, B)
        moments, hidden = self.model.first_stage_model.encode(ends)
        mean, logvar = split_posterior(moments)
        z = self.config.vae.scale_factor * sample_posterior(mean, logvar, vae_noise[[0, -1]].to(mean))
        c_concat = mean.new_zeros(1, z.shape[1], video.shape[2], *z.shape[2:])
        c_concat[:, :, 0], c_concat[:, :, -1] = z[0], z[1]
        ref_context = [h.transpose(0, 1)[None] for h in hidden]  # k c h w -> 1 c k h w
        return c_concat, ref_context

    def predict_v(
        self,
        x: torch.Tensor,
        t: int,
        c_concat: torch.Tensor,
        context: torch.Tensor,
        uncond: torch.Tensor,
        s: DDIMConfig,
        control: Control | None = None,
    ) -> torch.Tensor:
        """Guided v at integer timestep t: CFG on v, then guidance rescale (Lin et al. 2024, "rescale
        classifier-free guidance").

        The control residuals are computed once, with the conditional context, and added in both branches.
        """
        fs = torch.tensor([s.fs], device=x.device)
        tt = torch.tensor([t], device=x.device)
        unet = self.model.model
        res = list(control(x, tt, context)) if control is not None else None
        if s.guidance_scale == 1.0:
            return unet(x, tt, c_concat, context, fs, res)
        if self.batch_cfg:
            two = lambda z: torch.cat([z, z])  # noqa: E731
            res2 = [two(r) for r in res] if res is not None else None  # (b t) layout: cond frames, then uncond
            v_c, v_u = unet(two(x), two(tt), two(c_concat), torch.cat([context, uncond]), two(fs), res2).chunk(2)
        else:
            v_c, v_u = unet(x, tt, c_concat, context, fs, res), unet(x, tt, c_concat, uncond, fs, res)
        return guidance(v_c.float(), v_u.float(), s.guidance_scale, s.guidance_rescale)

    def denoise(
        self,
        x_t: torch.Tensor,
        c_concat: torch.Tensor,
        context: torch.Tensor,
        uncond: torch.Tensor,
        s: DDIMConfig,
        step_noise: Sequence[torch.Tensor],
        on_step: OnStep | None = None,
        control: Control | None = None,
    ) -> torch.Tensor:
        """DDIM from x_T down to alpha_bar[0]; calls on_step({step, total, t, x0_pred, latents})."""
        table = self.schedule.table(s.steps, s.eta, s.spacing)
        x = x_t.to(self.device, torch.float32)
        for i, index in enumerate(reversed(range(s.steps))):
            t = int(table["timesteps"][index])
            v = self.predict_v(x, t, c_concat, context, uncond, s, control).float()
            x, x0 = self.schedule.step(v, x, index, table, step_noise[i].to(x.device))
            if on_step is not None:
                on_step({"step": i, "total": s.steps, "t": t, "x0_pred": x0, "latents": x})
        return x

    def decode(self, latents: torch.Tensor, ref_context: list[torch.Tensor]) -> torch.Tensor:
        """Decode all frames, then overwrite the two middle frames with a decode that drops frames 1 and T-2."""
        vae = self.model.first_stage_model
        video = vae.decode(latents, ref_context, self.decode_chunk, self.decode_frames)
        t = latents.shape[2]
        keep = [i for i in range(t) if i not in (1, t - 2)]
        short = vae.decode(latents[:, :, keep], ref_context, self.decode_chunk, self.decode_frames)
        video[:, :, t // 2 - 1 : t // 2 + 1] = short[:, :, t // 2 - 2 : t // 2]
        return video
