"""The zero-SNR v-prediction schedule and the DDIM update, checked against Lin et al. 2024 (Alg. 1) and
DDIM (Song et al. 2021, Eq. 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tooncrafter_model.config import DDIMConfig
from tooncrafter_model.ddim import SCHEDULE_BUFFERS, DDIMSchedule, ddim_timesteps, guidance, schedule_arrays


@pytest.fixture(scope="module")
def schedule() -> DDIMSchedule:
    return DDIMSchedule.from_config(DDIMConfig())


def test_timesteps_trailing_and_uniform_are_exact() -> None:
    assert ddim_timesteps(50, spacing="uniform_trailing").tolist() == list(range(19, 1000, 20))
    assert ddim_timesteps(50, spacing="uniform").tolist() == list(range(1, 1000, 20))
    assert ddim_timesteps(4).tolist() == [249, 499, 749, 999]
    assert ddim_timesteps(3).tolist() == [332, 666, 999]  # round(1000 - k * 333.3) - 1
    with pytest.raises(ValueError, match="spacing"):
        ddim_timesteps(4, spacing="quad")
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(0)


def test_zero_snr_schedule_endpoints() -> None:
    a = schedule_arrays(DDIMConfig())
    assert list(a) == list(SCHEDULE_BUFFERS)
    assert a["betas"][-1].item() == 1.0 and a["alphas_cumprod"][-1].item() == 0.0
    assert a["alphas_cumprod"][0].item() == pytest.approx(0.99915, abs=1e-6)  # first value unchanged by the rescale
    assert a["alphas_cumprod"][998].item() == pytest.approx(1.97e-7, rel=1e-2)
    assert a["alphas_cumprod_prev"][0].item() == 1.0
    assert not a["sqrt_recip_alphas_cumprod"].any() and not a["sqrt_recipm1_alphas_cumprod"].any()
    assert a["posterior_log_variance_clipped"][0].item() == pytest.approx(np.log(1e-20))
    assert a["scale_arr"].shape == (1400,)
    assert a["scale_arr"][0].item() == 1.0 and a["scale_arr"][399].item() == pytest.approx(0.7)
    assert all(v.dtype == torch.float32 for v in a.values())
    plain = schedule_arrays(DDIMConfig(zero_terminal_snr=False))
    assert plain["alphas_cumprod"][-1].item() > 1e-3


def test_table_end_point_keeps_noise(schedule: DDIMSchedule) -> None:
    table = schedule.table(50, 1.0)
    assert table["alphas_prev"][0].item() == pytest.approx(0.99915, abs=1e-6)  # not 1
    assert table["sigmas"][0].item() == pytest.approx(0.02851, abs=1e-5)
    assert table["sigmas"][-1].item() == pytest.approx(0.99996, abs=1e-5)
    assert table["scale_prev"][0] == table["scale"][0]
    assert torch.equal(table["scale_prev"][1:], table["scale"][:-1])
    assert not schedule.table(50, 0.0)["sigmas"].any()


def test_v_conversions_invert_each_other(schedule: DDIMSchedule) -> None:
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 3, 5, 5, generator=g).unbind(0)
    for t in (0, 517, 998):
        a = schedule.alphas_cumprod[t].double()
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * eps).float()
        v = (a.sqrt() * eps - (1 - a).sqrt() * x0).float()
        torch.testing.assert_close(schedule.v_to_x0(v, x_t, t), x0, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(schedule.v_to_eps(v, x_t, t), eps, atol=1e-5, rtol=1e-5)
    # zero SNR: at t = 999 the prediction is x0 = -v whatever x_t is
    v = torch.randn(4, 3, 5, 5, generator=g)
    torch.testing.assert_close(schedule.v_to_x0(v, torch.randn(4, 3, 5, 5, generator=g), 999), -v)


def test_deterministic_step_lands_on_the_prediction(schedule: DDIMSchedule) -> None:
    """eta = 0 and a perfect v: x_prev is exactly the forward-noised x0 at the previous level (times rescale)."""
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 1, 4, 2, 6, 6, generator=g).unbind(0)
    table = schedule.table(10, 0.0)
    index = 5
    t = int(table["timesteps"][index])
    a, a_prev = schedule.alphas_cumprod[t], table["alphas_prev"][index]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    x_prev, pred = schedule.step(v, x_t, index, table, None)
    ratio = table["scale_prev"][index] / table["scale"][index]
    torch.testing.assert_close(pred, x0 * ratio, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_prev, a_prev.sqrt() * x0 * ratio + (1 - a_prev).sqrt() * eps, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="noise"):
        schedule.step(v, x_t, index, schedule.table(10, 1.0), None)


def test_guidance_rescale_uses_the_unbiased_std_of_the_conditional() -> None:
    g = torch.Generator().manual_seed(2)
    v_c, v_u = torch.randn(2, 1, 4, 3, 4, 4, generator=g).unbind(0)
    cfg = v_u + 7.5 * (v_c - v_u)
    torch.testing.assert_close(guidance(v_c, v_u, 7.5, 0.0), cfg)
    full = guidance(v_c, v_u, 7.5, 1.0)
    assert full.std(unbiased=True).item() == pytest.approx(v_c.std(unbiased=True).item(), rel=1e-5)
    torch.testing.assert_close(guidance(v_c, v_u, 7.5, 0.7), 0.7 * full + 0.3 * cfg)
    # per batch item: two items with different spreads are rescaled independently
    both = guidance(torch.cat([v_c, 3 * v_c]), torch.cat([v_u, v_u]), 7.5, 1.0)
    assert both[1].std().item() == pytest.approx(3 * v_c.std().item(), rel=1e-5)
