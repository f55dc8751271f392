"""Zero-SNR v-prediction noise schedule and the DDIM update (Song et al. 2021, Eq. 12). Stateless: no loop, no network.

Schedule arrays are computed in float64 numpy and stored as float32, like the reference's buffers; DDIM's
alpha_prev and sigma are computed in float64 from those float32 values and rounded to float32 per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tooncrafter_model.config import DDIMConfig

SCHEDULE_BUFFERS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "scale_arr",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The schedule
# ---------------------------------------------------------------------------------------------------


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Shift and scale sqrt(alpha_bar) so its last value is 0 and its first unchanged (Lin et al. 2024, Alg. 1)."""
    s = np.sqrt(np.cumprod(1.0 - betas))
    s0, s_last = s[0].copy(), s[-1].copy()
    s = (s - s_last) * (s0 / (s0 - s_last))
    alpha_bar = s**2
    alphas = np.concatenate([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1.0 - alphas


def schedule_arrays(cfg: DDIMConfig) -> dict[str, torch.Tensor]:
    """The 13 float32 schedule buffers the checkpoint carries (v-parameterisation: 1/alpha buffers are zeros)."""
    n = cfg.num_timesteps
    # explicit CPU: build_model may run under a `torch.device("meta")` context
    betas = torch.linspace(cfg.linear_start**0.5, cfg.linear_end**0.5, n, dtype=torch.float64, device="cpu")
    betas = (betas**2).numpy()
    if cfg.zero_terminal_snr:
        betas = rescale_zero_terminal_snr(betas)
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    posterior_variance = betas * (1.0 - ac_prev) / (1.0 - ac)
    scale_arr = np.concatenate([np.linspace(1.0, cfg.base_scale, cfg.turning_step), np.full(n, cfg.base_scale)])
    with np.errstate(divide="ignore"):
        arrays = {
            "betas": betas,
            "alphas_cumprod": ac,
            "alphas_cumprod_prev": ac_prev,
            "sqrt_alphas_cumprod": np.sqrt(ac),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
            "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
            "sqrt_recip_alphas_cumprod": np.zeros(n),
            "sqrt_recipm1_alphas_cumprod": np.zeros(n),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
            "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
            "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
            "scale_arr": scale_arr,
        }
    return {k: torch.tensor(arrays[k], dtype=torch.float32, device="cpu") for k in SCHEDULE_BUFFERS}


def ddim_timesteps(steps: int, num_timesteps: int = 1000, spacing: str = "uniform_trailing") -> np.ndarray:
    """Ascending DDPM timesteps a DDIM run visits: trailing ends at T-1 (Lin et al. 2024: sample from the
    last timestep), uniform starts at 1."""
    if not 0 < steps <= num_timesteps:
        raise ValueError(f"steps must be in 1..{num_timesteps}, got {steps}")
    if spacing == "uniform_trailing":
        c = num_timesteps / steps
        return np.flip(np.round(np.arange(num_timesteps, 0, -c))).astype(np.int64) - 1
    if spacing == "uniform":
        return np.arange(0, num_timesteps, num_timesteps // steps, dtype=np.int64) + 1
    raise ValueError(f"timestep spacing must be 'uniform_trailing' or 'uniform', got {spacing!r}")


# ---------------------------------------------------------------------------------------------------
# DDIM
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DDIMSchedule:
    """Read-only schedule arrays (float32) and the pure functions of one DDIM run on them."""

    alphas_cumprod: torch.Tensor
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    scale_arr: torch.Tensor

    @classmethod
    def from_config(cls, cfg: DDIMConfig) -> DDIMSchedule:
        a = schedule_arrays(cfg)
        return cls(a["alphas_cumprod"], a["sqrt_alphas_cumprod"], a["sqrt_one_minus_alphas_cumprod"], a["scale_arr"])

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    def timesteps(self, n: int, spacing: str = "uniform_trailing") -> np.ndarray:
        """Ascending timesteps of an n-step run; the sampler visits them in reverse."""
        return ddim_timesteps(n, self.num_timesteps, spacing)

    def table(self, n: int, eta: float, spacing: str = "uniform_trailing") -> dict[str, torch.Tensor]:
        """Per-step coefficients in ascending-timestep order (index i belongs to timesteps[i]).

        alpha_prev of the smallest timestep is alpha_bar[0] (not 1), so the last step still adds noise
        when eta > 0, as the reference does. scale_prev of the smallest timestep is its own scale.
        """
        ts = self.timesteps(n, spacing)
        ac32 = self.alphas_cumprod.numpy()
        alphas = ac32[ts].astype(np.float64)
        alphas_prev = np.concatenate([ac32[:1], ac32[ts[:-1]]]).astype(np.float64)
        # the reference divides by a float32 (1 - alpha_t): its reciprocal is rounded to float32 first
        inv_one_minus = (np.float32(1.0) / (np.float32(1.0) - ac32[ts])).astype(np.float64)
        sigmas = eta * np.sqrt((1.0 - alphas_prev) * inv_one_minus * (1.0 - alphas / alphas_prev))
        scale = self.scale_arr[ts]
        f32 = {"dtype": torch.float32, "device": "cpu"}
        return {
            "timesteps": torch.tensor(ts, device="cpu"),
            "alphas": torch.tensor(alphas, **f32),
            "alphas_prev": torch.tensor(alphas_prev, **f32),
            "sigmas": torch.tensor(sigmas, **f32),
            "scale": scale,
            "scale_prev": torch.cat([scale[:1], scale[:-1]]),
        }

    def v_to_eps(self, v: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
        """eps = sqrt(ab_t) v + sqrt(1 - ab_t) x_t."""
        return self.sqrt_alphas_cumprod[t].to(x) * v + self.sqrt_one_minus_alphas_cumprod[t].to(x) * x

    def v_to_x0(self, v: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
        """x0 = sqrt(ab_t) x_t - sqrt(1 - ab_t) v."""
        return self.sqrt_alphas_cumprod[t].to(x) * x - self.sqrt_one_minus_alphas_cumprod[t].to(x) * v

    def step(
        self, v: torch.Tensor, x: torch.Tensor, index: int, table: dict[str, torch.Tensor], noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM update from timesteps[index] (Song et al. 2021, eq. 12) -> (x_prev, x0_pred).

        symbol  <->  variable
        x_t          x
        v            v (model output, after guidance)
        a_t, a_prev  alpha_bar at t and at the next-visited (smaller) timestep
        sigma_t      eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        eps          fresh N(0, 1) noise, only needed when sigma_t > 0
        """
        t = int(table["timesteps"][index])
        a_prev, sigma = table["alphas_prev"][index].to(x), table["sigmas"][index].to(x)
        # 1. v -> (eps, x0) with the full-schedule buffers at the integer t
        eps = self.v_to_eps(v, x, t)
        x0 = self.v_to_x0(v, x, t)
        # 2. rescale x0 by the schedule's per-step scale (the reference's scale_arr)
        x0 = x0 * (table["scale_prev"][index] / table["scale"][index]).to(x)
        # 3. x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z
        dir_xt = (1.0 - a_prev - sigma**2).sqrt() * eps
        x_prev = a_prev.sqrt() * x0 + dir_xt
        if noise is not None and float(sigma) > 0:
            x_prev = x_prev + sigma * noise.to(x)
        elif float(sigma) > 0:
            raise ValueError("eta > 0 needs a noise tensor for every step")
        return x_prev, x0


def guidance(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float, rescale: float) -> torch.Tensor:
    """Classifier-free guidance on v, then guidance rescale with the unbiased std over all non-batch dims."""
    v = v_uncond + scale * (v_cond - v_uncond)
    if rescale > 0:
        dims = list(range(1, v.ndim))
        v = rescale * (v * (v_cond.std(dim=dims, keepdim=True) / v.std(dim=dims, keepdim=True))) + (1 - rescale) * v
    return v
