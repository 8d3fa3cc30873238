"""DDIM sampling with the mask-only branch and classifier-free guidance (Ho & Salimans 2022):

    eps = eps(x_t, no hint, null conditions) + g * (eps(x_t, hint(mask), conditions) - eps(x_t, ...))

The caller may own the loop (engine.schedule.DDIMSampler); :func:`sample` runs it whole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lesionviewer.engine.schedule import DDIMSampler, NoiseSchedule
from lesionviewer.training.synth.model import DIAGNOSES, TONES, Conditions, SiameseDenoiser


def null_conditions(b: int, device: torch.device | str = "cpu") -> Conditions:
    return Conditions(torch.full((b,), len(TONES), dtype=torch.long, device=device),
                      torch.full((b,), len(DIAGNOSES), dtype=torch.long, device=device))


def guided_eps(model: SiameseDenoiser, x_t: torch.Tensor, t: torch.Tensor, residuals: list[torch.Tensor],
               cond: Conditions, guidance: float) -> torch.Tensor:
    """Classifier-free guided noise (B,3,H,W); guidance 1 is the conditional model alone."""
    if guidance == 1.0:
        return model.eps(x_t, t, residuals, cond)
    b = x_t.shape[0]
    null = null_conditions(b, x_t.device)
    paired = Conditions(tone=None if cond.tone is None else torch.cat([cond.tone, null.tone]),
                        diagnosis=None if cond.diagnosis is None else torch.cat([cond.diagnosis, null.diagnosis]))
    no_hint = [torch.zeros_like(r) for r in residuals]
    both = model.eps(torch.cat([x_t, x_t]), torch.cat([t, t]),
                     [torch.cat([r, z]) for r, z in zip(residuals, no_hint)], paired)
    conditional, unconditional = both[:b], both[b:]
    return unconditional + guidance * (conditional - unconditional)


def clipped_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The noise that agrees with x0_hat clipped to -1..1 (guided-diffusion's clip_denoised):
    eps' = (x_t - sqrt(abar_t) clip(x0_hat)) / sqrt(1 - abar_t), Ho et al. eq. 4 solved for eps.
    Keeps a briefly trained model's early, noisy x0 guesses from running off into saturated colour."""
    x0 = schedule.predict_x0(x_t, t, eps).clamp(-1, 1)
    abar = schedule._gather(schedule.alphas_cumprod, t, x_t)
    return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()


def initial_noise(seeds: list[int], shape: tuple[int, int, int]) -> torch.Tensor:
    """x_T (B,C,H,W) float32: one generator per image, so an image depends on its seed only,
    not on the batch it was drawn in."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@torch.no_grad()
def sample(model: SiameseDenoiser, schedule: NoiseSchedule, masks: torch.Tensor, cond: Conditions,
           steps: int, guidance: float, noise: torch.Tensor,
           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Images (B,3,H,W) float in -1..1 for masks (B,1,H,W) float -1 (skin) / 1 (lesion), from
    x_T = ``noise`` (B,3,H,W). Deterministic DDIM (eta 0): the same noise gives the same images."""
    device = masks.device
    sampler = DDIMSampler(schedule)
    sampler.set_timesteps(steps)
    residuals = model.mask_residuals(masks)
    x = noise.to(device)
    for i, t in enumerate(sampler.timesteps):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=device)
        eps = clipped_eps(schedule, x, tt, guided_eps(model, x, tt, residuals, cond, guidance))
        x = sampler.step(eps, t, x)
        if progress:
            progress(i + 1, len(sampler.timesteps))
    return x.clamp(-1, 1)
