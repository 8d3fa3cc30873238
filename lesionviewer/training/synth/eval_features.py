"""The shipped analysis model's features of image sets, for the synthesis evaluation, cached.

Two kinds, both read from the analysis model's own denoiser (no downloaded network):

* embeddings (realism, KID): one forward pass at a fixed t under the lesion label, each decoder
  tap and the mid block pooled over the image (channel mean and standard deviation), so an
  image becomes one vector of 2 x (sum of tap channels) floats;
* probe features (the label-fraction test): the FEDD pixel features the shipped probe reads,
  from :func:`lesionviewer.training.features.extract`.

Every result is cached under ``cache_dir`` by a key naming the model id, the images' bytes and
the settings, so the evaluation can be re-run (or resumed) without repeating forward passes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from lesionviewer.engine.model import LesionModel
from lesionviewer.engine.unet import Label
from lesionviewer.training.data import ArraySet, to_model_range
from lesionviewer.training.features import FeatureSet, channel_slices, extract

EMBEDDING_TAPS = ("dec0", "dec1", "dec2", "dec3", "mid")


def cache_key(model: LesionModel, images: np.ndarray, **settings) -> str:
    h = hashlib.sha256(model.model_id.encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()[:20]


def cached(cache_dir: Path | None, name: str, key: str, compute):
    """compute() -> dict of arrays, stored as cache_dir/name-key.npz once."""
    path = None if cache_dir is None else Path(cache_dir) / f"{name}-{key}.npz"
    if path is not None and path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # two runs may fill one cache
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return arrays


@torch.inference_mode()
def embed_images(model: LesionModel, images: np.ndarray, *, timestep: int = 60, seed: int = 0, batch: int = 32,
                 cache_dir: Path | None = None) -> np.ndarray:
    """images: N x S x S x 3 uint8 RGB at the model's working size -> (N, D) float32 embeddings.

    Image i of every set gets the same noise draw (one generator, same order), so two sets differ
    in their images only, not in their noise."""
    def compute() -> dict:
        taps = [t for t in EMBEDDING_TAPS if t in model.unet.cfg.tap_channels()]
        gen = torch.Generator().manual_seed(seed)
        device = next(model.unet.parameters()).device
        out = []
        for start in range(0, len(images), batch):
            x0 = to_model_range(images[start:start + batch])
            noise = torch.randn(x0.shape, generator=gen)
            t = torch.full((len(x0),), int(timestep), dtype=torch.long)
            x_t = model.schedule.q_sample(x0, t, noise)
            y = torch.full((len(x0),), int(Label.LESION), dtype=torch.long)
            feats = model.unet(x_t.to(device), t.to(device), y.to(device), taps=taps)
            pooled = [torch.cat([f.mean((2, 3)), f.std((2, 3))], 1) for f in (feats[k] for k in taps)]
            out.append(torch.cat(pooled, 1).float().cpu().numpy())
        return {"embeddings": np.concatenate(out) if out else np.zeros((0, 0), np.float32)}

    key = cache_key(model, images, timestep=timestep, seed=seed, kind="embeddings")
    return cached(cache_dir, "embeddings", key, compute)["embeddings"]


def probe_features(model: LesionModel, arrays: ArraySet, timesteps, feature_size: int, *, pixels_per_image: int = 0,
                   keep_maps: bool = False, seed: int = 0, cache_dir: Path | None = None) -> tuple[FeatureSet, str]:
    """:func:`features.extract` (class-balanced pixels for training sets, whole maps for `val`),
    cached; the masks are part of the key since they choose the pixels. Returns (features, key):
    the key names these features in later cache keys."""
    def compute() -> dict:
        fs = extract(model, arrays, timesteps, feature_size, pixels_per_image=pixels_per_image,
                     keep_maps=keep_maps, seed=seed, device=str(next(model.unet.parameters()).device))
        keep = {"pooled": fs.pooled}
        if pixels_per_image:
            keep.update(pixels=fs.pixels, pixel_labels=fs.pixel_labels)
        if keep_maps:
            keep["maps"] = fs.maps
        return keep

    key = cache_key(model, np.concatenate([arrays.images.reshape(len(arrays.ids), -1),
                                      arrays.masks.reshape(len(arrays.ids), -1).astype(np.uint8)], 1),
               timesteps=list(map(int, timesteps)), feature_size=feature_size, pixels=pixels_per_image,
               maps=keep_maps, seed=seed, kind="probe")
    stored = cached(cache_dir, "probe", key, compute)
    return FeatureSet(tuple(int(t) for t in timesteps), channel_slices(model), pixels=stored.get("pixels"),
                      pixel_labels=stored.get("pixel_labels"), maps=stored.get("maps"), pooled=stored.get("pooled")), key
