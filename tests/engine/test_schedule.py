"""Noise schedule and DDIM math against values computed by hand (float64 throughout)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lesionviewer.engine.schedule import BetaSchedule, DDIMSampler, NoiseSchedule, make_betas


def hand_linear_beta(i: int, T: int = 1000) -> float:
    # Ho et al. 2020: betas evenly spaced from 1e-4 to 0.02 over T = 1000 steps.
    return 1e-4 + (0.02 - 1e-4) * i / (T - 1)


def hand_alpha_bar(i: int, T: int = 1000) -> float:
    return math.prod(1.0 - hand_linear_beta(k, T) for k in range(i + 1))


def x0_and_noise(shape=(3, 3, 4, 5), seed=0):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(shape, generator=gen, dtype=torch.float64)
    return x0, eps


def test_linear_betas_run_from_1e4_to_002_at_1000_steps():
    s = NoiseSchedule("linear", 1000)
    assert s.betas.dtype == np.float64 and s.betas.shape == (1000,)
    assert s.betas[0] == pytest.approx(1e-4, abs=1e-15)
    assert s.betas[999] == pytest.approx(0.02, abs=1e-15)
    assert s.betas[500] == pytest.approx(hand_linear_beta(500), abs=1e-15)
    assert s.alphas_cumprod[0] == pytest.approx(1 - 1e-4, abs=1e-15)
    assert s.alphas_cumprod[1] == pytest.approx((1 - 1e-4) * (1 - hand_linear_beta(1)), abs=1e-15)
    assert s.alphas_cumprod[999] == pytest.approx(hand_alpha_bar(999), rel=1e-10)
    assert s.alphas_cumprod_prev[0] == 1.0
    assert s.alphas_cumprod_prev[10] == s.alphas_cumprod[9]


def test_linear_betas_keep_their_curve_at_other_lengths():
    # guided-diffusion scales the end points by 1000 / T, so T = 500 runs from 2e-4 to 0.04.
    betas = make_betas(BetaSchedule.LINEAR, 500)
    assert betas[0] == pytest.approx(2e-4, abs=1e-15)
    assert betas[-1] == pytest.approx(0.04, abs=1e-15)


def test_q_sample_is_eq4_with_float64_tensors():
    s = NoiseSchedule("linear", 1000)
    x0, eps = x0_and_noise()
    t = torch.tensor([0, 500, 999])
    x_t = s.q_sample(x0, t, eps)
    assert x_t.dtype == torch.float64
    for b, step in enumerate(t.tolist()):
        abar = hand_alpha_bar(step)
        expected = math.sqrt(abar) * x0[b] + math.sqrt(1 - abar) * eps[b]
        torch.testing.assert_close(x_t[b], expected, rtol=0, atol=1e-12)


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule("linear", 1000)
    x0, eps = x0_and_noise(seed=1)
    t = torch.tensor([3, 250, 900])
    recovered = s.predict_x0(s.q_sample(x0, t, eps), t, eps)
    torch.testing.assert_close(recovered, x0, rtol=0, atol=1e-10)


def test_cosine_betas_are_clipped_and_alpha_bar_falls():
    s = NoiseSchedule("cosine", 1000)
    assert s.betas.max() <= 0.999
    assert s.betas[-1] == 0.999  # alpha_bar(1) = cos(pi/2)^2 = 0 would give beta = 1
    assert np.all(np.diff(s.alphas_cumprod) < 0)
    assert 0 < s.alphas_cumprod[-1] < 1e-3

    def f(t):  # Nichol & Dhariwal eq. 17 with s = 0.008
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    # Below the clip the product of (1 - beta) telescopes to f((t+1)/T) / f(0).
    assert s.alphas_cumprod[499] == pytest.approx(f(500 / 1000) / f(0), abs=1e-12)


def test_unknown_schedule_kind_is_refused():
    with pytest.raises(ValueError):
        NoiseSchedule("quadratic", 1000)


def test_set_timesteps_counts_down_to_zero():
    sampler = DDIMSampler(NoiseSchedule("linear", 1000))
    sampler.set_timesteps(5)
    assert sampler.timesteps == [999, 749, 500, 250, 0]
    sampler.set_timesteps(5, start=100)
    assert sampler.timesteps == [100, 75, 50, 25, 0]
    assert sampler.previous(75) == 50 and sampler.previous(0) == -1


def test_set_timesteps_drops_repeated_steps():
    sampler = DDIMSampler(NoiseSchedule("linear", 50))
    sampler.set_timesteps(80)
    assert sampler.timesteps == list(range(49, -1, -1))


def test_ddim_step_with_the_true_noise_recovers_x0_at_the_last_step():
    s = NoiseSchedule("linear", 1000)
    sampler = DDIMSampler(s)
    sampler.set_timesteps(4, start=300)  # [300, 200, 100, 0]
    x0, eps = x0_and_noise(seed=2)
    x_last = s.q_sample(x0, torch.zeros(3, dtype=torch.long), eps)
    torch.testing.assert_close(sampler.step(eps, 0, x_last), x0, rtol=0, atol=1e-12)


def test_ddim_step_moves_along_the_same_noise_and_a_full_loop_lands_on_x0():
    s = NoiseSchedule("linear", 1000)
    sampler = DDIMSampler(s)
    sampler.set_timesteps(10)
    x0, eps = x0_and_noise(seed=3)
    first = sampler.timesteps[0]
    x = s.q_sample(x0, torch.full((3,), first), eps)
    # Song et al. eq. 12 with sigma = 0: given the true eps, x_t' = q_sample(x0, t', eps).
    x_next = sampler.step(eps, first, x)
    expected = s.q_sample(x0, torch.full((3,), sampler.previous(first)), eps)
    torch.testing.assert_close(x_next, expected, rtol=0, atol=1e-10)
    for t in sampler.timesteps:
        x = sampler.step(eps, t, x)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-9)
