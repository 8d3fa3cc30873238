"""The class-conditional UNet: shapes, labels, feature taps and the early stop for taps."""

from __future__ import annotations

import pytest
import torch

from lesionviewer.engine.unet import ConditionalUNet, Label, UNetConfig, build_unet

CFG = UNetConfig(base_channels=8, channel_mult=(1, 2, 3), attention_levels=(2,), groups=4)
SIZE = 16


def trained_looking(cfg: UNetConfig = CFG, seed: int = 0) -> ConditionalUNet:
    """A UNet whose zero-initialised layers are perturbed, so labels reach the output."""
    torch.manual_seed(seed)
    net = build_unet(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return net


def inputs(batch: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, 3, SIZE, SIZE), generator=gen) * 2 - 1
    t = torch.tensor([100, 700][:batch])
    return x, t


def test_predicted_noise_has_the_input_shape():
    x, t = inputs()
    eps = trained_looking()(x, t, torch.full((2,), int(Label.LESION)))
    assert eps.shape == x.shape and eps.dtype == torch.float32


def test_a_fresh_unet_predicts_zero_noise():
    # The output convolution starts at zero (guided-diffusion's zero_module).
    x, t = inputs()
    eps = build_unet(CFG.to_dict())(x, t, torch.zeros(2, dtype=torch.long))
    assert torch.count_nonzero(eps) == 0


def test_lesion_and_healthy_labels_predict_different_noise():
    net = trained_looking()
    x, t = inputs()
    with torch.no_grad():
        lesion = net(x, t, torch.full((2,), int(Label.LESION)))
        healthy = net(x, t, torch.full((2,), int(Label.HEALTHY)))
        again = net(x, t, torch.full((2,), int(Label.LESION)))
    assert (lesion - healthy).abs().mean() > 1e-3
    torch.testing.assert_close(lesion, again)


def test_taps_have_the_channels_and_strides_the_config_promises():
    net = trained_looking()
    x, t = inputs()
    names = list(CFG.tap_channels())
    assert set(names) == {"dec0", "dec1", "dec2", "mid"}
    with torch.no_grad():
        features = net(x, t, torch.ones(2, dtype=torch.long), taps=names)
    assert set(features) == set(names)
    for name, f in features.items():
        stride = CFG.tap_stride(name)
        assert f.shape == (2, CFG.tap_channels()[name], SIZE // stride, SIZE // stride), name
    assert CFG.tap_channels() == {"dec0": 8, "dec1": 16, "dec2": 24, "mid": 24}
    assert [CFG.tap_stride(n) for n in ("dec0", "dec1", "dec2", "mid")] == [1, 2, 4, 4]


def test_asking_for_a_deep_decoder_tap_stops_before_the_output_layer():
    net = trained_looking()
    called = []
    net.out.register_forward_hook(lambda *_: called.append("out"))
    net.up[2].register_forward_hook(lambda *_: called.append("dec0"))  # up[j] is level n-1-j
    x, t = inputs()
    with torch.no_grad():
        early = net(x, t, torch.ones(2, dtype=torch.long), taps=["dec1"])
    assert called == []
    with torch.no_grad():
        eps, full = net(x, t, torch.ones(2, dtype=torch.long), taps=["dec1"], with_eps=True)
    assert called == ["dec0", "out"]
    torch.testing.assert_close(early["dec1"], full["dec1"])


def test_with_eps_returns_the_noise_and_the_taps_of_one_pass():
    net = trained_looking()
    x, t = inputs()
    y = torch.ones(2, dtype=torch.long)
    with torch.no_grad():
        eps, features = net(x, t, y, taps=["dec0", "mid"], with_eps=True)
        plain = net(x, t, y)
    torch.testing.assert_close(eps, plain)
    assert set(features) == {"dec0", "mid"}


def test_an_unknown_tap_is_refused():
    x, t = inputs()
    with pytest.raises(ValueError, match="dec7"):
        trained_looking()(x, t, torch.ones(2, dtype=torch.long), taps=["dec7"])


def test_config_round_trips_through_a_dict():
    assert UNetConfig.from_dict(CFG.to_dict()) == CFG
