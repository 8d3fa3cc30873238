"""Unit tests of the synthesis model's parts: the Siamese losses, the hint injection, the mask
deformations and DDIM sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.unet import Label, UNetConfig
from lesionviewer.training.synth.losses import LossWeights, consistency_loss, siamese_losses
from lesionviewer.training.synth.masks import Deformation, deform
from lesionviewer.training.synth.model import Conditions, SiameseDenoiser
from lesionviewer.training.synth.sampling import initial_noise, sample

CFG = UNetConfig(base_channels=8, channel_mult=(1, 2), attention_levels=(1,), groups=4)


def tiny_denoiser(seed: int = 0, enliven: bool = True) -> SiameseDenoiser:
    torch.manual_seed(seed)
    model = SiameseDenoiser(CFG, hint_channels=(4, 4), tone=True, diagnosis=True)
    if enliven:  # zero-initialised layers would hide every effect below
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "zero" in name or name.endswith(("conv2.weight", "proj.weight", "out.weight", "embed.weight")):
                    p.normal_(0, 0.2)
    return model


def disc_masks(b: int, size: int = 16) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    m = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2).float() * 2 - 1
    return m.expand(b, 1, size, size).clone()


def test_consistency_term_is_zero_when_branches_agree_and_reaches_the_mask_branch_only():
    eps = torch.randn(2, 3, 8, 8)
    assert consistency_loss(eps, eps.clone()).item() == 0.0
    eps_mask = torch.randn(2, 3, 8, 8, requires_grad=True)
    eps_image = torch.randn(2, 3, 8, 8, requires_grad=True)
    consistency_loss(eps_mask, eps_image).backward()
    assert eps_mask.grad.abs().sum() > 0 and eps_image.grad is None


def test_siamese_losses_agree_at_zero_ramp_and_the_image_branch_does_not_train_the_mask_hint():
    model, schedule = tiny_denoiser(), NoiseSchedule("linear", 100)
    x0, masks = torch.rand(2, 3, 16, 16) * 2 - 1, disc_masks(2)
    cond = Conditions(torch.tensor([0, 3]), torch.tensor([0, 1]))
    w = LossWeights(consistency=1.0, mask_dropout=0.0)
    # ramp 0: the image branch's condition is the (detached) mask hint, so the branches agree
    terms = siamese_losses(model, schedule, x0, masks, cond, w, ramp=0.0, gen=torch.Generator().manual_seed(0))
    assert terms["consistency"].item() == pytest.approx(0.0, abs=1e-10)
    assert terms["mask"].item() == pytest.approx(terms["image"].item(), rel=1e-5)
    # the image branch's loss alone leaves the mask hint encoder untouched (stopgrad)
    terms = siamese_losses(model, schedule, x0, masks, cond, w, ramp=1.0, gen=torch.Generator().manual_seed(0))
    assert terms["consistency"].item() > 0
    model.zero_grad()
    terms["image"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.mask_hint.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.image_hint.parameters())


def test_online_augmentation_adds_a_term_for_small_timesteps():
    model, schedule = tiny_denoiser(), NoiseSchedule("linear", 100)  # T = 100: every t <= 200
    terms = siamese_losses(model, schedule, torch.rand(2, 3, 16, 16) * 2 - 1, disc_masks(2), Conditions(),
                           LossWeights(online_augmentation=True, mask_dropout=0.0), 0.5, torch.Generator().manual_seed(1))
    assert terms["online_aug"].item() > 0
    assert terms["total"].item() == pytest.approx(sum(v.item() for k, v in terms.items() if k != "total"), rel=1e-6)


def test_a_fresh_denoiser_is_the_unet_it_starts_from():
    model = tiny_denoiser(enliven=False)
    with torch.no_grad():
        for name, p in model.unet.named_parameters():  # a "trained" UNet, hints still at zero
            if name.endswith(("conv2.weight", "out.weight")):
                p.normal_(0, 0.2)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([5, 50])
    plain = model.unet(x, t, torch.full((2,), int(Label.LESION)))
    hinted = model.eps(x, t, model.mask_residuals(disc_masks(2)), Conditions(torch.tensor([1, 2]), None))
    assert torch.allclose(plain, hinted, atol=1e-6)


def test_ddim_sampling_is_deterministic_per_seed_and_independent_of_the_batch():
    model, schedule = tiny_denoiser().eval(), NoiseSchedule("linear", 100)
    cond = Conditions(torch.tensor([0, 4]), torch.tensor([1, 1]))

    def run(seeds, masks, c):
        return sample(model, schedule, masks, c, steps=4, guidance=3.0, noise=initial_noise(seeds, (3, 16, 16)))

    a, b = run([1, 2], disc_masks(2), cond), run([1, 2], disc_masks(2), cond)
    assert torch.equal(a, b) and a.shape == (2, 3, 16, 16) and a.abs().max() <= 1
    alone = run([2], disc_masks(1), Conditions(cond.tone[1:], cond.diagnosis[1:]))
    assert torch.allclose(alone[0], a[1], atol=1e-3)  # batched convolutions round differently
    assert not torch.allclose(run([7, 2], disc_masks(2), cond)[0], a[0])
    empty = -torch.ones(2, 1, 16, 16)
    assert not torch.allclose(run([1, 2], empty, cond), a)  # the mask steers the image


@pytest.mark.parametrize("kind", [Deformation.AFFINE, Deformation.ELASTIC, Deformation.BOTH])
def test_mask_deformations_stay_binary_with_bounded_area(kind):
    yy, xx = np.mgrid[0:128, 0:128]
    mask = ((yy - 60) ** 2 / 30**2 + (xx - 70) ** 2 / 20**2) < 1
    changed = 0
    for seed in range(6):
        out = deform(mask, np.random.default_rng(seed), kind, min_area=0.5, max_area=2.0)
        assert out.dtype == bool and out.shape == mask.shape
        assert 0.5 * mask.sum() <= out.sum() <= 2.0 * mask.sum()
        changed += int((out != mask).sum() > 0.05 * mask.sum())
        assert np.array_equal(out, deform(mask, np.random.default_rng(seed), kind))
    assert changed >= 5
    assert np.array_equal(deform(mask, np.random.default_rng(0), Deformation.NONE), mask)


def test_clipped_eps_only_changes_noise_whose_x0_leaves_the_image_range():
    from lesionviewer.training.synth.sampling import clipped_eps

    schedule = NoiseSchedule("linear", 100)
    t = torch.tensor([60, 60])
    x0 = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 3.0)])  # in range / far outside
    eps = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x_t = schedule.q_sample(x0, t, eps)
    fixed = clipped_eps(schedule, x_t, t, eps)
    assert torch.allclose(fixed[0], eps[0], atol=1e-5)
    assert torch.allclose(schedule.predict_x0(x_t, t, fixed)[1], torch.ones(3, 4, 4), atol=1e-5)
