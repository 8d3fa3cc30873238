"""Noise schedule and DDPM/DDIM math (Ho et al. 2020; Song et al. 2021), as plain functions.

Tables are float64 numpy arrays (as guided-diffusion ``gaussian_diffusion.py``); tensors are
gathered from them per timestep. The denoiser is passed in by the caller, never owned here.
"""

from __future__ import annotations

import enum
import math

import numpy as np
import torch


class BetaSchedule(str, enum.Enum):
    LINEAR = "linear"  # Ho et al. 2020, betas from 1e-4 to 0.02 at T=1000
    COSINE = "cosine"  # Nichol & Dhariwal 2021, eq. 17


def make_betas(kind: BetaSchedule | str, num_timesteps: int) -> np.ndarray:
    """Betas, shape (T,), float64."""
    kind = BetaSchedule(kind)
    if kind is BetaSchedule.LINEAR:
        scale = 1000.0 / num_timesteps  # keeps the curve the same for other T (guided-diffusion)
        if scale * 0.02 >= 1.0:
            raise ValueError(f"a linear schedule needs at least 21 steps, not {num_timesteps}")
        return np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)

    def alpha_bar(t: float) -> float:  # Nichol & Dhariwal eq. 17, s = 0.008
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / num_timesteps) / alpha_bar(i / num_timesteps), 0.999)
        for i in range(num_timesteps)
    ]
    return np.asarray(betas, dtype=np.float64)


class NoiseSchedule:
    """The forward process q(x_t | x_0) and the reverse-step algebra for one beta table."""

    def __init__(self, kind: BetaSchedule | str = BetaSchedule.LINEAR, num_timesteps: int = 1000):
        self.kind = BetaSchedule(kind)
        self.num_timesteps = int(num_timesteps)
        self.betas = make_betas(self.kind, self.num_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "num_timesteps": self.num_timesteps}

    @staticmethod
    def _gather(table: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """table[t] shaped (B, 1, 1, 1) in ``like``'s dtype and device."""
        values = torch.from_numpy(table).to(like.device)[t.to(like.device).long()]
        return values.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps  (Ho et al. eq. 4)."""
        return (
            self._gather(self.sqrt_alphas_cumprod, t, x0) * x0
            + self._gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)  (eq. 4 solved for x_0)."""
        return (
            self._gather(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self._gather(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )


class DDIMSampler:
    """Deterministic DDIM (eta = 0) over a sub-sequence of steps; the caller owns the loop.

    Usage, as diffusers' schedulers::

        sampler.set_timesteps(50)
        for t in sampler.timesteps:
            eps = model(x, t, y)
            x = sampler.step(eps, t, x)
    """

    def __init__(self, schedule: NoiseSchedule):
        self.schedule = schedule
        self.timesteps: list[int] = []

    def set_timesteps(self, num_steps: int, start: int | None = None) -> None:
        """Evenly spaced steps from ``start`` (default T-1) down to 0."""
        first = self.schedule.num_timesteps - 1 if start is None else int(start)
        steps = np.linspace(first, 0, num_steps).round().astype(int)
        self.timesteps = [int(s) for s in dict.fromkeys(steps.tolist())]

    def previous(self, t: int) -> int:
        i = self.timesteps.index(t)
        return self.timesteps[i + 1] if i + 1 < len(self.timesteps) else -1

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor) -> torch.Tensor:
        """x_{t'} = sqrt(abar_t') x0_hat + sqrt(1 - abar_t') eps  (Song et al. eq. 12, sigma=0)."""
        s = self.schedule
        t_prev = self.previous(t)
        abar_prev = s.alphas_cumprod[t_prev] if t_prev >= 0 else 1.0
        x0 = s.predict_x0(x_t, torch.full((x_t.shape[0],), t), eps)
        return math.sqrt(abar_prev) * x0 + math.sqrt(1.0 - abar_prev) * eps
