"""Per-photo read-outs of the frozen model that the trust layer is fitted on, exactly as the Analyzer
makes them: one seeded noise draw per sample timestep (the pipeline's seed-0 draw), one
lesion-label pass, the probe's mask per sample, and from the same pass

* the pooled lesion features the malignancy head reads (over the probe's mask, and over the
  expert mask where one is given), for the photo and its test-time flips / rotations;
* the decoder feature moments and the denoising error the out-of-distribution score reads.

Extraction is the slow part (one network pass per photo and view), so :func:`cached` keeps the
arrays under runs/ keyed by model and photo set.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from lesionviewer.engine import ood
from lesionviewer.engine.model import LesionModel
from lesionviewer.engine.probe import MalignancyHead, gather_features
from lesionviewer.engine.unet import Label

# Test-time views of the working-size photo: (rotations by 90 degrees, horizontal flip).
VIEWS = ((0, False), (0, True), (2, False), (2, True))


@dataclasses.dataclass
class TrustFeatures:
    """Read-outs of N photos. V views, T sample timesteps, C probe feature channels."""

    ids: list[str]
    timesteps: tuple[int, ...]
    pooled: np.ndarray  # (N, V, T, 2C+1) float32 pooled over the probe's mask, per view
    pooled_expert: np.ndarray  # (N, T, 2C+1) float32 pooled over the expert mask (NaN without)
    moments: np.ndarray  # (N, 2C) float32 feature moments of the unrotated view
    errors: np.ndarray  # (N, T) float64 denoising error of the unrotated view
    lesion_fraction: np.ndarray  # (N,) share of the photo in the probe's consensus (unrotated)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, ids=np.array(self.ids), timesteps=np.array(self.timesteps), pooled=self.pooled,
                 pooled_expert=self.pooled_expert, moments=self.moments, errors=self.errors,
                 lesion_fraction=self.lesion_fraction)

    @classmethod
    def load(cls, path: Path) -> TrustFeatures:
        with np.load(path) as z:
            return cls([str(v) for v in z["ids"]], tuple(int(t) for t in z["timesteps"]), z["pooled"],
                       z["pooled_expert"], z["moments"], z["errors"], z["lesion_fraction"])


def _view(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, k, dims=(-2, -1))
    return x.flip(-1) if flip else x


@torch.inference_mode()
def extract_trust(model: LesionModel, images: list[np.ndarray], ids: list[str], timesteps,
                  masks: list[np.ndarray | None] | None = None, *, views=VIEWS, seed: int = 0,
                  desc: str = "trust features") -> TrustFeatures:
    """images: HxWx3 uint8 RGB photos of any size (resized as the Analyzer does); masks: HxW bool
    expert masks or None."""
    if model.probe is None:
        raise ValueError("the trust read-outs need a model with a probe")
    size, cfg = model.working_size, model.probe.cfg
    n, t_count = len(images), len(timesteps)
    width = 2 * cfg.in_channels + 1
    out = TrustFeatures(list(ids), tuple(int(t) for t in timesteps),
                        np.zeros((n, len(views), t_count, width), np.float32),
                        np.full((n, t_count, width), np.nan, np.float32),
                        np.zeros((n, 2 * cfg.in_channels), np.float32), np.zeros((n, t_count)), np.zeros(n))
    t = torch.tensor(timesteps, dtype=torch.long)
    device = next(model.unet.parameters()).device
    for i, image in enumerate(tqdm(images, desc=desc, unit="photo", dynamic_ncols=True)):
        small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        x0 = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(127.5).sub(1.0)
        gen = torch.Generator().manual_seed(int(seed))  # the pipeline's draw for this seed
        noise = torch.randn((t_count, *x0.shape[1:]), generator=gen)
        batch_x = torch.cat([model.schedule.q_sample(_view(x0, k, f).expand(t_count, -1, -1, -1), t, noise)
                             for k, f in views])
        labels = torch.full((len(batch_x),), int(Label.LESION), dtype=torch.long)
        eps, taps = model.unet(batch_x.to(device), t.repeat(len(views)).to(device), labels.to(device),
                               taps=list(cfg.blocks), with_eps=True)
        rgb = torch.cat([_view(x0, k, f).expand(t_count, -1, -1, -1) for k, f in views]).to(device)
        g = gather_features(taps, rgb if cfg.include_rgb else None, cfg.blocks, cfg.feature_size)
        prob = model.probe.lesion_probability(g, size).float().cpu().numpy()
        fs = cfg.feature_size
        lesion = np.stack([cv2.resize(p, (fs, fs), interpolation=cv2.INTER_AREA) >= 0.5 for p in prob])
        pooled = MalignancyHead.pool(g, torch.from_numpy(lesion).to(device)).float().cpu().numpy()
        out.pooled[i] = pooled.reshape(len(views), t_count, width)
        out.moments[i] = ood.feature_moments(g[:t_count])
        out.errors[i] = ood.denoising_error(eps[:t_count], noise)
        out.lesion_fraction[i] = float((prob[:t_count].mean(0) >= 0.5).mean())
        mask = None if masks is None else masks[i]
        if mask is not None:
            m = cv2.resize(mask.astype(np.float32), (fs, fs), interpolation=cv2.INTER_AREA)
            weights = torch.from_numpy(m)[None].expand(t_count, -1, -1).to(device)
            out.pooled_expert[i] = MalignancyHead.pool(g[:t_count], weights).float().cpu().numpy()
    return out


def cached(path: Path, key: str, compute) -> TrustFeatures:
    """``compute()``'s result, stored at ``path`` with ``key`` (e.g. model id + photo ids)
    beside it, and read back while the key matches."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stored = path.with_name(f"{path.stem}-{digest}.npz")
    if stored.is_file():
        return TrustFeatures.load(stored)
    features = compute()
    features.save(stored)
    return features
