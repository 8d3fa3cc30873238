"""Class-conditional denoising UNet with named feature taps on its decoder blocks.

Time and class embeddings enter every residual block through scale-shift group norm
(guided-diffusion ``ResBlock(use_scale_shift_norm=True)``). Labels are :class:`Label`: healthy
skin, lesion, and a null label for unconditional use (classifier-free style dropout).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Label(enum.IntEnum):
    HEALTHY = 0
    LESION = 1
    NULL = 2


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (3,)  # level index (0 = full resolution)
    num_classes: int = 3
    groups: int = 8
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        d = dict(d)
        for key in ("channel_mult", "attention_levels"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def tap_channels(self) -> dict[str, int]:
        """Channels of every named tap: ``dec{level}`` (level 0 = full resolution) and ``mid``."""
        taps = {f"dec{i}": self.base_channels * m for i, m in enumerate(self.channel_mult)}
        taps["mid"] = self.base_channels * self.channel_mult[-1]
        return taps

    def tap_stride(self, name: str) -> int:
        level = len(self.channel_mult) - 1 if name == "mid" else int(name[3:])
        return 2**level


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al.; guided-diffusion ``timestep_embedding``), (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, ch_in: int, ch_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch_in)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * ch_out)
        self.norm2 = nn.GroupNorm(groups, ch_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(ch_in, ch_out, 1) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, ch: int, groups: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Residual blocks (+ attention) at one resolution."""

    def __init__(self, ch_in: int, ch_out: int, cfg: UNetConfig, emb_dim: int, attention: bool):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResBlock(ch_in if i == 0 else ch_out, ch_out, emb_dim, cfg.groups, cfg.dropout)
            for i in range(cfg.num_res_blocks)
        )
        self.attention = SelfAttention(ch_out, cfg.groups) if attention else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, emb)
        return self.attention(x)


class ConditionalUNet(nn.Module):
    """eps_theta(x_t, t, y): (B,3,H,W) float in -1..1, (B,) long steps, (B,) long labels.

    H and W must be multiples of 2**(levels-1).
    """

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        base, mult = cfg.base_channels, cfg.channel_mult
        emb_dim = 4 * base
        self.time_embed = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embed = nn.Embedding(cfg.num_classes, emb_dim)
        self.stem = nn.Conv2d(cfg.in_channels, base, 3, padding=1)
        chans = [base * m for m in mult]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = base
        for i, c in enumerate(chans):
            self.down.append(Level(ch, c, cfg, emb_dim, i in cfg.attention_levels))
            ch = c
            if i < len(chans) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, cfg.groups, cfg.dropout),
                                  SelfAttention(ch, cfg.groups),
                                  ResBlock(ch, ch, emb_dim, cfg.groups, cfg.dropout)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(chans))):
            self.up.append(Level(ch + chans[i], chans[i], cfg, emb_dim, i in cfg.attention_levels))
            ch = chans[i]
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, chans[i - 1], 3, padding=1))
                ch = chans[i - 1]
        self.out_norm = nn.GroupNorm(cfg.groups, ch)
        self.out = nn.Conv2d(ch, cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def embed(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.time_embed(timestep_embedding(t, self.cfg.base_channels)) + self.class_embed(y)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor,
        taps: Sequence[str] | None = None,
        with_eps: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor] | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The predicted noise (B,3,H,W); with ``taps``, a dict of those feature maps only; with
        ``taps`` and ``with_eps``, (noise, features) from the same pass.

        Asking only for taps stops the pass after the last decoder block needed.
        """
        wanted = set(taps or ())
        unknown = wanted - set(self.cfg.tap_channels())
        if unknown:
            raise ValueError(f"unknown feature taps {sorted(unknown)}")
        features: dict[str, torch.Tensor] = {}
        emb = self.embed(t, y)
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        if "mid" in wanted:
            features["mid"] = h
        n = len(self.up)
        for j, level in enumerate(self.up):
            i = n - 1 - j
            h = level(torch.cat([h, skips[i]], dim=1), emb)
            name = f"dec{i}"
            if name in wanted:
                features[name] = h
                if wanted.issubset(features) and not with_eps:
                    return features
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        eps = self.out(F.silu(self.out_norm(h)))
        if with_eps:
            return eps, features
        return features if wanted else eps


def build_unet(config: dict | UNetConfig) -> ConditionalUNet:
    cfg = config if isinstance(config, UNetConfig) else UNetConfig.from_dict(config)
    return ConditionalUNet(cfg)
