"""A loaded lesionviewer model: denoiser, schedule, optional probes, and their settings.

Built from ``config.json`` by :func:`build_model`; :func:`load_model` adds the checked weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from lesionviewer.engine.checkpoint import ModelError, load_weights
from lesionviewer.engine.diffseg import DiffSegParams
from lesionviewer.engine.probe import MalignancyHead, PixelProbe, ProbeConfig, probe_in_channels
from lesionviewer.engine.refine import CRFParams
from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.unet import ConditionalUNet, UNetConfig


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
        return str(self.config.get("name", "unnamed"))

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


def build_model(config: dict[str, Any]) -> LesionModel:
    """Modules with fresh (random) weights, shaped by ``config``. Tests use this; users never do."""
    try:
        unet_cfg = UNetConfig.from_dict(config["unet"])
        unet = ConditionalUNet(unet_cfg)
        probe = malignancy = None
        if config.get("probe"):
            probe_cfg = ProbeConfig.from_dict(config["probe"])
            probe_cfg = dataclasses.replace(probe_cfg, in_channels=probe_in_channels(unet_cfg.tap_channels(), probe_cfg))
            probe = PixelProbe(probe_cfg)
            if config.get("malignancy"):
                malignancy = MalignancyHead(probe_cfg.in_channels, int(config["malignancy"].get("hidden", 64)))
        return LesionModel(
            config=config,
            unet=unet,
            schedule=NoiseSchedule(**config["schedule"]),
            diffseg=DiffSegParams.from_dict(config.get("diffseg") or {}),
            crf=CRFParams.from_dict(config.get("crf") or {}),
            probe=probe,
            malignancy=malignancy,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"the model's config.json is not valid: {e!r}") from None


def load_model(model_dir: str | Path) -> LesionModel:
    """Build from config.json and load model.safetensors after checking its SHA-256."""
    config, state = load_weights(model_dir)
    model = build_model(config)
    for prefix, module in model.modules().items():
        part = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
        try:
            module.load_state_dict(part, strict=True)
        except RuntimeError as e:
            raise ModelError(f"weights in {model_dir} do not fit its config ({prefix}): {e}") from None
    model.model_id = f"{model.name}@{config['weights']['sha256'][:8]}"
    for m in model.modules().values():
        m.eval()
    return model
