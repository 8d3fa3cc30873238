"""Pixel-probe ensemble and malignancy head: shapes, ensemble mean, pooling, temperature."""

from __future__ import annotations

import torch

from lesionviewer.engine.probe import (
    MalignancyHead,
    PixelProbe,
    ProbeConfig,
    gather_features,
    probe_in_channels,
)


def probe(classes=("background", "lesion"), members=3, in_channels=6, seed=0) -> PixelProbe:
    torch.manual_seed(seed)
    cfg = ProbeConfig(blocks=("dec0",), hidden=4, members=members, classes=classes, in_channels=in_channels)
    return PixelProbe(cfg).eval()


def features(b=2, c=6, h=5, w=7, seed=0):
    return torch.randn((b, c, h, w), generator=torch.Generator().manual_seed(seed))


def test_probe_gives_one_logit_map_per_member_and_class():
    logits = probe(members=3)(features())
    assert logits.shape == (2, 3, 2, 5, 7)


def test_lesion_probability_is_the_ensemble_mean_of_the_softmax():
    p = probe(members=3)
    f = features(h=6, w=6)
    prob = p.lesion_probability(f, out_size=6)
    assert prob.shape == (2, 6, 6)
    assert prob.min() >= 0 and prob.max() <= 1
    expected = p(f).softmax(dim=2)[:, :, 1].mean(dim=1)
    torch.testing.assert_close(prob, expected)
    # Members really differ, so a mean over them is not the same as any one member.
    one = p(f).softmax(dim=2)[:, 0, 1]
    assert (one - prob).abs().max() > 1e-4


def test_lesion_probability_reads_the_class_named_lesion():
    p = probe(classes=("lesion", "background"))
    f = features(h=4, w=4)
    torch.testing.assert_close(p.lesion_probability(f, 4), p(f).softmax(dim=2)[:, :, 0].mean(dim=1))


def test_lesion_probability_is_resized_to_the_working_grid():
    assert probe().lesion_probability(features(h=4, w=4), out_size=32).shape == (2, 32, 32)


def test_stored_standardisation_is_applied():
    p = probe()
    f = features()
    with torch.no_grad():
        p.feature_mean.fill_(3.0)
        p.feature_std.fill_(2.0)
    torch.testing.assert_close(p.standardise(f), (f - 3.0) / 2.0)


def test_gather_features_stacks_taps_and_image_on_one_grid():
    taps = {"dec0": torch.ones((1, 4, 8, 8)), "dec1": torch.full((1, 6, 4, 4), 2.0)}
    x0 = torch.full((1, 3, 8, 8), -1.0)
    out = gather_features(taps, x0, ("dec0", "dec1"), 6)
    assert out.shape == (1, 13, 6, 6)
    torch.testing.assert_close(out[:, :4], torch.ones((1, 4, 6, 6)))
    torch.testing.assert_close(out[:, 4:10], torch.full((1, 6, 6, 6), 2.0))
    torch.testing.assert_close(out[:, 10:], torch.full((1, 3, 6, 6), -1.0))
    cfg = ProbeConfig(blocks=("dec0", "dec1"), include_rgb=True)
    assert probe_in_channels({"dec0": 4, "dec1": 6, "mid": 9}, cfg) == 13


def test_pool_gives_mean_and_spread_inside_the_lesion_and_its_area():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 0.0], [0.0, 10.0]]]])  # (1, 2, 2, 2)
    lesion = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    pooled = MalignancyHead.pool(f, lesion)
    # inside (top row): means 1.5 and 5; spreads 0.5 and 5; area 2/4. The bottom row is ignored.
    torch.testing.assert_close(pooled, torch.tensor([[1.5, 5.0, 0.5, 5.0, 0.5]]))


def test_pool_with_soft_weights_and_with_no_lesion():
    f = torch.tensor([[[[2.0, 4.0], [6.0, 8.0]]]])  # (1, 1, 2, 2)
    half = torch.full((1, 2, 2), 0.5)
    # mean sum(w f) / sum(w) = 10 / 2 = 5; spread sqrt(0.5 (9 + 1 + 1 + 9) / 2) = sqrt(5); area 0.5.
    torch.testing.assert_close(MalignancyHead.pool(f, half), torch.tensor([[5.0, 5.0 ** 0.5, 0.5]]))
    # An empty lesion pools to zeros rather than dividing by zero.
    torch.testing.assert_close(MalignancyHead.pool(f, torch.zeros((1, 2, 2))), torch.tensor([[0.0, 0.0, 0.0]]))


def test_temperature_softens_confidence_but_keeps_the_ranking():
    torch.manual_seed(0)
    head = MalignancyHead(in_channels=3, hidden=8).eval()
    pooled = torch.randn((16, 7))
    logits = head.logit(pooled)
    sharp = head.probability(pooled)
    torch.testing.assert_close(sharp, torch.sigmoid(logits))
    with torch.no_grad():
        head.temperature.fill_(3.0)
    soft = head.probability(pooled)
    torch.testing.assert_close(soft, torch.sigmoid(logits / 3.0))
    assert torch.equal(torch.argsort(sharp), torch.argsort(soft))
    assert ((soft - 0.5).abs() <= (sharp - 0.5).abs()).all()
    assert ((soft - 0.5).abs() < (sharp - 0.5).abs()).any()


def test_probe_config_round_trips_and_ignores_unknown_keys():
    cfg = ProbeConfig(blocks=("dec1",), members=4)
    assert ProbeConfig.from_dict({**cfg.to_dict(), "val_dice": 0.8}) == cfg


def test_member_probability_reads_one_member_per_image_or_the_mean():
    p = probe(members=3)
    f = features(b=4, h=5, w=5)
    per_member = p(f).softmax(dim=2)[:, :, 1]  # (B, K, h, w)
    picked = p.member_probability(f, [0, 1, 2, 3])  # member 3 wraps round to 0
    for b, k in enumerate([0, 1, 2, 0]):
        torch.testing.assert_close(picked[b], per_member[b, k])
    torch.testing.assert_close(p.member_probability(f, None), per_member.mean(dim=1))
    assert (picked[1] - picked[2]).abs().max() > 1e-4 or (per_member[1, 1] - per_member[1, 2]).abs().max() < 1e-6
