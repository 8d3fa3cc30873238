"""Fitting the pixel-probe ensemble and the malignancy head on frozen features.

Probe: every member sees the same pixels with its own initialisation, dropout and Poisson(1)
bootstrap weights (an online bootstrap), so the ensemble's spread reflects the data. The
malignancy head is class-balanced (positive weight n_neg / n_pos) and calibrated afterwards by
temperature scaling on `val` (Guo et al. 2017).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from lesionviewer.engine.probe import MalignancyHead, PixelProbe, ProbeConfig
from lesionviewer.training.metrics import auroc


def train_probe(cfg: ProbeConfig, x: np.ndarray, y: np.ndarray, *, epochs: int = 3, lr: float = 2e-3,
                batch: int = 4096, seed: int = 0) -> PixelProbe:
    """x: (M, C) float16 pixel features, y: (M,) bool lesion labels. Returns a trained probe."""
    torch.manual_seed(seed)
    cfg = dataclasses.replace(cfg, in_channels=x.shape[1])
    probe = PixelProbe(cfg)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y.astype(np.int64))
    mean = xt[: 200_000].float().mean(0)
    std = xt[: 200_000].float().std(0).clamp_min(1e-3)
    probe.feature_mean.copy_(mean)
    probe.feature_std.copy_(std)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps))
    gen = torch.Generator().manual_seed(seed)
    probe.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch):
            idx = order[start:start + batch]
            logits = probe(xt[idx].float()[:, :, None, None])[:, :, :, 0, 0]  # (B, K, classes)
            target = yt[idx]
            loss = F.cross_entropy(logits.permute(0, 2, 1), target[:, None].expand(-1, cfg.members),
                                   reduction="none")
            weights = torch.poisson(torch.ones_like(loss), generator=gen)
            loss = (loss * weights).sum() / weights.sum().clamp_min(1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return probe.eval()


@torch.inference_mode()
def probe_probabilities(probe: PixelProbe, maps: np.ndarray, out_size: int, batch: int = 32) -> np.ndarray:
    """maps: (N, C, f, f) float16 -> (N, out_size, out_size) float32 lesion probability."""
    out = np.zeros((len(maps), out_size, out_size), np.float32)
    for start in range(0, len(maps), batch):
        feats = torch.from_numpy(maps[start:start + batch]).float()
        out[start:start + batch] = probe.lesion_probability(feats, out_size).numpy()
    return out


def mean_dice(masks: np.ndarray, references: np.ndarray) -> float:
    """Mean Dice over (N, H, W) bool pairs; an empty pair counts 1."""
    inter = (masks & references).sum((1, 2))
    total = masks.sum((1, 2)) + references.sum((1, 2))
    return float(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0).mean())


@dataclasses.dataclass
class MalignancyFit:
    head: MalignancyHead
    val_auroc: float | None
    temperature: float
    epochs: int


def train_malignancy(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                     *, hidden: int = 64, epochs: int = 300, lr: float = 1e-3, seed: int = 0) -> MalignancyFit:
    """x: (M, 2C+1) pooled features; y: (M,) 0/1. Full-batch AdamW, then temperature on val."""
    torch.manual_seed(seed)
    head = MalignancyHead((train_x.shape[1] - 1) // 2, hidden)
    xt, yt = torch.from_numpy(train_x).float(), torch.from_numpy(train_y).float()
    head.feature_mean.copy_(xt.mean(0))
    head.feature_std.copy_(xt.std(0).clamp_min(1e-4))
    pos_weight = (len(yt) - yt.sum()) / yt.sum().clamp_min(1.0)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    head.train()
    for _ in range(epochs):
        loss = F.binary_cross_entropy_with_logits(head.logit(xt), yt, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        val_logits = head.logit(torch.from_numpy(val_x).float())
    temperature = fit_temperature(val_logits, torch.from_numpy(val_y).float())
    head.temperature.fill_(temperature)
    probs = torch.sigmoid(val_logits / temperature).numpy()
    val_auroc = auroc(probs, val_y.astype(bool)) if 0 < val_y.sum() < len(val_y) else None
    return MalignancyFit(head, val_auroc, temperature, epochs)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the NLL of sigmoid(logit / T) (a 1-D search on log T)."""
    best_t, best_nll = 1.0, float("inf")
    for log_t in np.linspace(-3, 3, 241):
        t = float(np.exp(log_t))
        nll = float(F.binary_cross_entropy_with_logits(logits / t, labels))
        if nll < best_nll:
            best_t, best_nll = t, nll
    return best_t
