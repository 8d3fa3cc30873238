"""A loaded lesionviewer model: denoiser, schedule, optional probes, and their settings.

Built from ``config.json`` by :func:`build_model`; :func:`load_model` adds the checked weights
and refuses a model whose outputs are not finite on a built-in test image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from lesionviewer.engine.checkpoint import CONFIG_HASH_KEY, ModelError, load_weights
from lesionviewer.engine.config_schema import ConfigError, safe_model_name, validate_config
from lesionviewer.engine.diffseg import DiffSegParams
from lesionviewer.engine.probe import MalignancyHead, PixelProbe, ProbeConfig, gather_features, probe_in_channels
from lesionviewer.engine.refine import CRFParams
from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.unet import ConditionalUNet, Label, UNetConfig

TEST_IMAGE_SIDE = 32


@dataclasses.dataclass
class LesionModel:
    config: dict[str, Any]
    unet: ConditionalUNet
    schedule: NoiseSchedule
    diffseg: DiffSegParams
    crf: CRFParams
    probe: PixelProbe | None = None
    malignancy: MalignancyHead | None = None
    model_id: str = "unsaved"

    @property
    def name(self) -> str:
        """The config's name, reduced to [A-Za-z0-9._-] (it is shown to users)."""
        return safe_model_name(self.config.get("name", "unnamed"))

    @property
    def working_size(self) -> int:
        return int(self.config["working_size"])

    def modules(self) -> dict[str, torch.nn.Module]:
        parts = {"unet": self.unet, "probe": self.probe, "malignancy": self.malignancy}
        return {k: v for k, v in parts.items() if v is not None}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{k}": v for prefix, m in self.modules().items() for k, v in m.state_dict().items()}

    def to(self, device: str | torch.device) -> LesionModel:
        for m in self.modules().values():
            m.to(device).eval()
        return self


def _build_modules(config: dict[str, Any]) -> tuple[ConditionalUNet, PixelProbe | None, MalignancyHead | None]:
    unet_cfg = UNetConfig.from_dict(config["unet"])
    unet = ConditionalUNet(unet_cfg)
    probe = malignancy = None
    if config.get("probe"):
        probe_cfg = ProbeConfig.from_dict(config["probe"])
        probe_cfg = dataclasses.replace(probe_cfg, in_channels=probe_in_channels(unet_cfg.tap_channels(), probe_cfg))
        probe = PixelProbe(probe_cfg)
        if config.get("malignancy"):
            malignancy = MalignancyHead(probe_cfg.in_channels, int(config["malignancy"].get("hidden", 64)))
    return unet, probe, malignancy


def build_model(config: dict[str, Any]) -> LesionModel:
    """Modules with fresh (random) weights, shaped by ``config``. Tests use this; users never do.

    The config is held to the schema first, so no config can make it allocate without bound."""
    try:
        validate_config(config)
    except ConfigError as e:
        raise ModelError(f"the model's config.json is not valid: {e}") from None
    try:
        unet, probe, malignancy = _build_modules(config)
        return LesionModel(
            config=config,
            unet=unet,
            schedule=NoiseSchedule(**config["schedule"]),
            diffseg=DiffSegParams.from_dict(config.get("diffseg") or {}),
            crf=CRFParams.from_dict(config.get("crf") or {}),
            probe=probe,
            malignancy=malignancy,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"the model's config.json is not valid: {e!r}") from None


def _test_image(size: int) -> torch.Tensor:
    """A fixed synthetic dermoscopy-like image, (1, 3, size, size) float32 in -1..1: skin-toned
    background with a shading gradient and a dark, brownish, off-centre disc."""
    ramp = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
    disc = (((xx - 0.1) ** 2 + (yy + 0.05) ** 2) < 0.3).float()
    skin = torch.tensor([0.55, 0.25, 0.15])[:, None, None] + 0.1 * xx[None]
    lesion = torch.tensor([-0.3, -0.55, -0.6])[:, None, None]
    return (skin * (1 - disc) + lesion * disc)[None].clamp(-1, 1)


@torch.inference_mode()
def check_outputs_finite(model: LesionModel) -> None:
    """Run the built-in test image through every part once (one timestep, both labels); raise
    ModelError when any output is NaN or infinite, e.g. weights that overflow or a probe whose
    stored feature spread is zero. Costs one small forward pass: at most TEST_IMAGE_SIDE pixels
    a side (any multiple of the UNet's stride works), a tenth of an analysis's pass."""
    stride = 2 ** (len(model.unet.cfg.channel_mult) - 1)
    size = min(model.working_size, max(stride, TEST_IMAGE_SIDE // stride * stride))
    device = next(model.unet.parameters()).device
    x0 = _test_image(size).to(device)
    lo, hi = model.config.get("defaults", {}).get("timestep_range", (60, 150))
    t = torch.full((2,), (int(lo) + int(hi)) // 2, dtype=torch.long, device=device)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)).to(device)
    x_t = model.schedule.q_sample(x0.expand(2, -1, -1, -1), t, noise.expand(2, -1, -1, -1))
    y = torch.tensor([int(Label.LESION), int(Label.HEALTHY)], device=device)
    taps = list(model.probe.cfg.blocks) if model.probe is not None else []
    eps, features = model.unet(x_t, t, y, taps=taps, with_eps=True)
    outputs = {"denoiser": eps}
    if model.probe is not None:
        cfg = model.probe.cfg
        gathered = gather_features({k: v[:1] for k, v in features.items()}, x0 if cfg.include_rgb else None,
                                   cfg.blocks, cfg.feature_size)
        lesion = model.probe.lesion_probability(gathered, cfg.feature_size)
        outputs["probe"] = lesion
        if model.malignancy is not None:
            pooled = MalignancyHead.pool(gathered, (lesion >= 0.5).float())
            outputs["malignancy head"] = model.malignancy.probability(pooled)
    for part, value in outputs.items():
        if not bool(torch.isfinite(value).all()):
            raise ModelError(f"the model's {part} gives NaN or infinite outputs on the built-in test image: "
                             "its weights are broken; retrain or reinstall the model")


def load_model(model_dir: str | Path) -> LesionModel:
    """Build from config.json and load model.safetensors after checking both digests, the
    config's schema, that the weights fit the config and that the outputs are finite."""
    config, state = load_weights(model_dir)  # the config passed the schema, so its size is bounded
    model = build_model(config)
    for prefix, module in model.modules().items():
        part = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
        try:
            module.load_state_dict(part, strict=True)
        except RuntimeError as e:
            raise ModelError(f"weights in {model_dir} do not fit its config ({prefix}): {e}") from None
    for m in model.modules().values():
        m.eval()
    check_outputs_finite(model)
    # The config digest covers the weights' digest, so the id changes when either changes.
    model.model_id = f"{model.name}@{config[CONFIG_HASH_KEY][:8]}"
    return model
