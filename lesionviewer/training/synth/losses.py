"""Siamese-Diffusion's training objective (Qiu et al. 2025, Sec. 3), one step's worth.

    L = MSE(eps_mask, eps) + MSE(eps_image, eps) + w * MSE(eps_mask, stopgrad(eps_image))

eps_mask: the mask branch's prediction; eps_image: the image branch's (its condition is
stopgrad(hint(mask)) + ramp * image_hint(image)). The third term, the noise-consistency loss,
pulls the mask-only branch toward the better-informed image branch; the stop-gradient keeps the
image branch from being pulled the other way. Online augmentation (after a third of training):
predictions of the mask branch at t <= 200 give x0_hat, which is re-noised and trained on as a
new image for the same mask.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.training.synth.model import DIAGNOSES, TONES, Conditions, SiameseDenoiser

ONLINE_AUG_MAX_T = 200  # the paper's threshold for re-noising predicted x0


@dataclasses.dataclass(frozen=True)
class LossWeights:
    consistency: float = 1.0  # w; 0 with image_branch False gives the mask-only baseline
    image_branch: bool = True
    online_augmentation: bool = False  # switched on by the trainer after a third of training
    mask_dropout: float = 0.1  # drop the mask hint (and conditions) for classifier-free guidance


def consistency_loss(eps_mask: torch.Tensor, eps_image: torch.Tensor,
                     keep: torch.Tensor | None = None) -> torch.Tensor:
    """MSE(eps_mask, stopgrad(eps_image)), over the samples with ``keep`` (B,) bool true (those
    whose mask branch saw the mask); gradients reach the mask branch only."""
    per_sample = (eps_mask - eps_image.detach()).pow(2).flatten(1).mean(1)
    if keep is None:
        return per_sample.mean()
    return (per_sample * keep).sum() / keep.sum().clamp(min=1)


def drop_residuals(residuals: list[torch.Tensor], keep: torch.Tensor) -> list[torch.Tensor]:
    """Zero each sample's hint where ``keep`` (B,) bool is false: the unconditional model."""
    k = keep.to(residuals[0].dtype)[:, None, None, None]
    return [r * k for r in residuals]


def siamese_losses(model: SiameseDenoiser, schedule: NoiseSchedule, x0: torch.Tensor, mask: torch.Tensor,
                   cond: Conditions, weights: LossWeights, ramp: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The step's loss terms (scalars) and their ``total``.

    x0: (B,3,H,W) float -1..1 real images; mask: (B,1,H,W) float -1 (skin) / 1 (lesion);
    cond: class indices, already null where dropped; ramp: training step / max steps."""
    b, device = x0.shape[0], x0.device
    t = torch.randint(0, schedule.num_timesteps, (b,), generator=gen).to(device)
    noise = torch.randn(x0.shape, generator=gen).to(device)
    keep = (torch.rand(b, generator=gen) >= weights.mask_dropout).to(device)
    cond = null_where_dropped(cond, keep)
    x_t = schedule.q_sample(x0, t, noise)
    mask_res = model.mask_residuals(mask)
    eps_mask = model.eps(x_t, t, drop_residuals(mask_res, keep), cond)
    terms = {"mask": F.mse_loss(eps_mask, noise)}
    if weights.image_branch:
        eps_image = model.eps(x_t, t, model.image_residuals(mask_res, x0, ramp), cond)
        terms["image"] = F.mse_loss(eps_image, noise)
        if weights.consistency > 0:
            terms["consistency"] = weights.consistency * consistency_loss(eps_mask, eps_image, keep)
    if weights.online_augmentation:
        low = (t <= ONLINE_AUG_MAX_T) & keep
        if bool(low.any()):
            terms["online_aug"] = online_augmentation_loss(model, schedule, x_t[low], t[low], eps_mask[low],
                                                           [r[low] for r in mask_res], _subset(cond, low), gen)
    terms["total"] = sum(terms.values())
    return terms


def null_where_dropped(cond: Conditions, keep: torch.Tensor) -> Conditions:
    """The conditions with the null index where ``keep`` (B,) bool is false, so a dropped sample
    trains the fully unconditional model that guidance subtracts."""
    null = (len(TONES), len(DIAGNOSES))
    return Conditions(*(None if c is None else torch.where(keep, c, torch.full_like(c, n))
                        for c, n in zip((cond.tone, cond.diagnosis), null)))


def _subset(cond: Conditions, rows: torch.Tensor) -> Conditions:
    return Conditions(*(None if c is None else c[rows] for c in (cond.tone, cond.diagnosis)))


def online_augmentation_loss(model: SiameseDenoiser, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                             eps_mask: torch.Tensor, mask_res: list[torch.Tensor], cond: Conditions,
                             gen: torch.Generator) -> torch.Tensor:
    """Re-noise the mask branch's predicted x0 (stopgrad, clamped to -1..1) at a fresh t and train
    the mask branch to denoise it: new images for the same masks (the paper's Online-Augmentation)."""
    x0_hat = schedule.predict_x0(x_t, t, eps_mask.detach()).clamp(-1, 1)
    t2 = torch.randint(0, schedule.num_timesteps, (x_t.shape[0],), generator=gen).to(x_t.device)
    noise2 = torch.randn(x0_hat.shape, generator=gen).to(x_t.device)
    eps = model.eps(schedule.q_sample(x0_hat, t2, noise2), t2, mask_res, cond)
    return F.mse_loss(eps, noise2)
