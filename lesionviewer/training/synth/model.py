"""The Siamese denoiser: one engine UNet shared by a mask branch and an image branch.

Dense Hint Input (the paper's DHI, ControlNet-style): a small conv encoder turns the condition
into one residual per UNet resolution level (and the middle block), each through a
zero-initialised 1x1 conv, added to the input of that level. With all zero convs at zero the
model is exactly the UNet it was initialised from (the shipped analysis backbone).

* mask branch: residuals = hint(mask)
* image branch: residuals = stopgrad(hint(mask)) + ramp * image_hint(image), ramp = training
  step / max steps (the paper's image-prior weight)

Optional conditions (skin-tone group, diagnosis) are class embeddings added to the time
embedding, zero-initialised, with a null index for classifier-free guidance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lesionviewer.engine.checkpoint import CONFIG_HASH_KEY, load_weights
from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.skintone import GROUP_NAMES
from lesionviewer.engine.unet import ConditionalUNet, Label, UNetConfig

KIND = "synthesis"
TONES = (*GROUP_NAMES, "unknown")
DIAGNOSES = ("nevus", "melanoma", "seborrheic_keratosis", "unknown")
HINT_CHANNELS = (16, 32, 48, 64)


def _zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class HintEncoder(nn.Module):
    """Condition (B,C,H,W) float -> one residual per UNet level (level i at H/2**i, with the
    channels entering that level) plus one for the middle block; all zero at initialisation."""

    def __init__(self, in_channels: int, level_inputs: Sequence[int], hint_channels: Sequence[int]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, hint_channels[0], 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(hint_channels[0], hint_channels[0], 3, padding=1), nn.SiLU())
        self.blocks = nn.ModuleList()
        ch = hint_channels[0]
        for i, c in enumerate(hint_channels):
            stride = 1 if i == 0 else 2
            self.blocks.append(nn.Sequential(nn.Conv2d(ch, c, 3, stride=stride, padding=1), nn.SiLU(),
                                             nn.Conv2d(c, c, 3, padding=1), nn.SiLU()))
            ch = c
        self.zero = nn.ModuleList(_zero_conv(h, u) for h, u in zip(hint_channels, level_inputs[:-1]))
        self.zero_mid = _zero_conv(hint_channels[-1], level_inputs[-1])

    def forward(self, cond: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(cond)
        out = []
        for block, zero in zip(self.blocks, self.zero):
            h = block(h)
            out.append(zero(h))
        out.append(self.zero_mid(h))
        return out


def controlled_eps(unet: ConditionalUNet, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                   residuals: Sequence[torch.Tensor] | None, extra_emb: torch.Tensor | None) -> torch.Tensor:
    """The UNet's predicted noise (B,3,H,W) with ``residuals`` (one per level + middle) added to
    each down level's input and the middle block's input; engine.unet.ConditionalUNet.forward
    otherwise (same modules, same order)."""
    emb = unet.embed(t, y)
    if extra_emb is not None:
        emb = emb + extra_emb
    h = unet.stem(x)
    skips = []
    for i, level in enumerate(unet.down):
        if residuals is not None:
            h = h + residuals[i]
        h = level(h, emb)
        skips.append(h)
        if i < len(unet.downsample):
            h = unet.downsample[i](h)
    if residuals is not None:
        h = h + residuals[-1]
    h = unet.mid[2](unet.mid[1](unet.mid[0](h, emb)), emb)
    n = len(unet.up)
    for j, level in enumerate(unet.up):
        h = level(torch.cat([h, skips[n - 1 - j]], dim=1), emb)
        if j < len(unet.upsample):
            h = unet.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
    return unet.out(F.silu(unet.out_norm(h)))


@dataclasses.dataclass
class Conditions:
    """Per-sample class indices (B,) long: into TONES / DIAGNOSES, or their null index (len)."""

    tone: torch.Tensor | None = None
    diagnosis: torch.Tensor | None = None


class SiameseDenoiser(nn.Module):
    def __init__(self, unet_cfg: UNetConfig, hint_channels: Sequence[int] = HINT_CHANNELS,
                 tone: bool = False, diagnosis: bool = False, image_branch: bool = True):
        super().__init__()
        chans = [unet_cfg.base_channels * m for m in unet_cfg.channel_mult]
        if len(hint_channels) != len(chans):
            raise ValueError(f"hint_channels needs {len(chans)} entries, one per UNet level")
        self.unet = ConditionalUNet(unet_cfg)
        level_inputs = [unet_cfg.base_channels, *chans]  # what enters down level i; the middle block last
        self.mask_hint = HintEncoder(1, level_inputs, hint_channels)
        self.image_hint = HintEncoder(3, level_inputs, hint_channels) if image_branch else None
        emb_dim = 4 * unet_cfg.base_channels
        self.tone_embed = nn.Embedding(len(TONES) + 1, emb_dim) if tone else None
        self.diagnosis_embed = nn.Embedding(len(DIAGNOSES) + 1, emb_dim) if diagnosis else None
        for e in (self.tone_embed, self.diagnosis_embed):
            if e is not None:
                nn.init.zeros_(e.weight)

    def extra_embedding(self, cond: Conditions | None) -> torch.Tensor | None:
        parts = []
        if cond is not None and self.tone_embed is not None and cond.tone is not None:
            parts.append(self.tone_embed(cond.tone))
        if cond is not None and self.diagnosis_embed is not None and cond.diagnosis is not None:
            parts.append(self.diagnosis_embed(cond.diagnosis))
        return sum(parts) if parts else None

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, residuals: Sequence[torch.Tensor] | None,
            cond: Conditions | None = None) -> torch.Tensor:
        y = torch.full((x_t.shape[0],), int(Label.LESION), dtype=torch.long, device=x_t.device)
        return controlled_eps(self.unet, x_t, t, y, residuals, self.extra_embedding(cond))

    def mask_residuals(self, mask: torch.Tensor) -> list[torch.Tensor]:
        """mask: (B,1,H,W) float in -1 (skin) .. 1 (lesion)."""
        return self.mask_hint(mask)

    def image_residuals(self, mask_residuals: Sequence[torch.Tensor], image: torch.Tensor,
                        ramp: float) -> list[torch.Tensor]:
        """stopgrad(hint(mask)) + ramp * image_hint(image); image (B,3,H,W) float in -1..1."""
        if self.image_hint is None:
            raise RuntimeError("this synthesis model was built without the image branch")
        return [m.detach() + ramp * r for m, r in zip(mask_residuals, self.image_hint(image))]

    def sampling_state_dict(self) -> dict[str, torch.Tensor]:
        """What `lesionviewer synth` needs: everything but the training-only image branch."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("image_hint.")}


def synthesis_config(name: str, unet: dict, schedule: dict, working_size: int, *, tone: bool,
                     diagnosis: bool, hint_channels: Sequence[int] = HINT_CHANNELS) -> dict[str, Any]:
    return {"kind": KIND, "name": name, "working_size": int(working_size), "unet": dict(unet),
            "schedule": dict(schedule),
            "control": {"hint_channels": list(hint_channels), "mask_channels": 1, "inject": "level_inputs"},
            "conditions": {"tone": bool(tone), "diagnosis": bool(diagnosis), "tones": list(TONES),
                           "diagnoses": list(DIAGNOSES)},
            "sampling": {"steps": 12, "guidance": 3.0}}


def build_denoiser(config: dict[str, Any], image_branch: bool = False) -> SiameseDenoiser:
    cond = config.get("conditions") or {}
    return SiameseDenoiser(UNetConfig.from_dict(config["unet"]), tuple(config["control"]["hint_channels"]),
                           tone=bool(cond.get("tone")), diagnosis=bool(cond.get("diagnosis")),
                           image_branch=image_branch)


@dataclasses.dataclass
class SynthesisModel:
    config: dict[str, Any]
    denoiser: SiameseDenoiser
    schedule: NoiseSchedule
    model_id: str

    @property
    def working_size(self) -> int:
        return int(self.config["working_size"])


def load_synthesis_model(model_dir: str | Path) -> SynthesisModel:
    """The checked synthesis model (hash-checked safetensors, no code run); an analysis model
    folder is refused with one sentence (engine.checkpoint, kind "synthesis")."""
    config, state = load_weights(model_dir, kind=KIND)
    denoiser = build_denoiser(config)
    denoiser.load_state_dict(state)
    denoiser.eval().requires_grad_(False)
    return SynthesisModel(config, denoiser, NoiseSchedule(**config["schedule"]),
                          f"{Path(model_dir).name}@{config[CONFIG_HASH_KEY][:8]}")
