"""Frozen decoder features of the backbone, extracted once and reused by every head and sweep.

For each image and each timestep t: one seeded noise draw, x_t = q_sample(x_0, t, eps), one
forward pass under the lesion label (the label the Analyzer reads the probe features from),
all decoder taps gathered at the probe's feature grid. Train images keep a class-balanced
sample of pixels; validation images keep whole maps (float16) so masks can be scored.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from lesionviewer.engine.diffseg import Statistic, error_difference, noise_difference
from lesionviewer.engine.model import LesionModel
from lesionviewer.engine.probe import MalignancyHead, gather_features
from lesionviewer.engine.unet import Label
from lesionviewer.training.data import ArraySet, to_model_range

ALL_BLOCKS = ("dec0", "dec1", "dec2", "dec3")


@dataclasses.dataclass
class FeatureSet:
    """Features of one split at several timesteps. Channel order: ALL_BLOCKS taps, then RGB."""

    timesteps: tuple[int, ...]
    channels: dict[str, slice]  # tap name or "rgb" -> channel slice
    pixels: np.ndarray | None = None  # (T, N, P, C) float16 sampled pixels (train)
    pixel_labels: np.ndarray | None = None  # (N, P) bool
    maps: np.ndarray | None = None  # (T, N, C, f, f) float16 whole maps (val)
    pooled: np.ndarray | None = None  # (T, N, 2C+1) float32 pooled over the expert mask
    differences: dict[Statistic, np.ndarray] | None = None  # statistic -> (T, N, S, S) float32


def channel_slices(model: LesionModel) -> dict[str, slice]:
    taps = model.unet.cfg.tap_channels()
    out, start = {}, 0
    for b in ALL_BLOCKS[: len(model.unet.cfg.channel_mult)]:
        out[b] = slice(start, start + taps[b])
        start += taps[b]
    out["rgb"] = slice(start, start + 3)
    return out


def select_channels(channels: dict[str, slice], blocks, include_rgb: bool) -> np.ndarray:
    idx = [np.arange(channels[b].start, channels[b].stop) for b in blocks]
    if include_rgb:
        idx.append(np.arange(channels["rgb"].start, channels["rgb"].stop))
    return np.concatenate(idx)


def balanced_pixels(lesion: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` pixels, half lesion and half background where both exist."""
    inside, outside = np.flatnonzero(lesion), np.flatnonzero(~lesion)
    if len(inside) == 0 or len(outside) == 0:
        return rng.choice(len(lesion), count, replace=True)
    half = count // 2
    return np.concatenate([rng.choice(inside, half), rng.choice(outside, count - half)])


@torch.inference_mode()
def extract(model: LesionModel, arrays: ArraySet, timesteps, feature_size: int, *, pixels_per_image: int = 0,
            keep_maps: bool = False, differences: bool = False, seed: int = 0, batch: int = 16,
            device: str = "cpu") -> FeatureSet:
    n, size = len(arrays.ids), arrays.images.shape[1]
    blocks = ALL_BLOCKS[: len(model.unet.cfg.channel_mult)]
    channels = channel_slices(model)
    c = channels["rgb"].stop
    fs = FeatureSet(tuple(timesteps), channels)
    T = len(timesteps)
    if pixels_per_image:
        fs.pixels = np.zeros((T, n, pixels_per_image, c), np.float16)
        fs.pixel_labels = np.zeros((n, pixels_per_image), bool)
    if keep_maps:
        fs.maps = np.zeros((T, n, c, feature_size, feature_size), np.float16)
    if differences:
        fs.differences = {stat: np.zeros((T, n, size, size), np.float32) for stat in Statistic}
    fs.pooled = np.zeros((T, n, 2 * c + 1), np.float32)
    rng = np.random.default_rng(seed)
    small_masks = torch.from_numpy(arrays.masks[:, None].astype(np.float32))
    small_masks = torch.nn.functional.interpolate(small_masks, size=(feature_size, feature_size), mode="area")[:, 0]
    chosen = np.zeros((n, pixels_per_image), np.int64)
    for i in range(n if pixels_per_image else 0):  # class-balanced pixels, the same at every t
        flat_mask = small_masks[i].numpy().ravel() >= 0.5
        chosen[i] = balanced_pixels(flat_mask, pixels_per_image, rng)
        fs.pixel_labels[i] = flat_mask[chosen[i]]
    gen = torch.Generator().manual_seed(seed)
    with tqdm(total=T * n, desc="features", unit="image", dynamic_ncols=True) as bar:
        for ti, t in enumerate(timesteps):
            for start in range(0, n, batch):
                stop = min(n, start + batch)
                x0 = to_model_range(arrays.images[start:stop])
                noise = torch.randn(x0.shape, generator=gen)
                tt = torch.full((stop - start,), int(t), dtype=torch.long)
                x_t = model.schedule.q_sample(x0, tt, noise)
                labels = [Label.LESION, Label.HEALTHY] if differences else [Label.LESION]
                xb = torch.cat([x_t] * len(labels)).to(device)
                yb = torch.cat([torch.full((stop - start,), int(lab)) for lab in labels]).to(device)
                eps, taps = model.unet(xb, tt.repeat(len(labels)).to(device), yb, taps=list(blocks), with_eps=True)
                k = stop - start
                lesion_taps = {name: v[:k] for name, v in taps.items()}
                g = gather_features(lesion_taps, x0.to(device), blocks, feature_size).float().cpu()
                if differences:
                    fs.differences[Statistic.ABS_DIFFERENCE][ti, start:stop] = noise_difference(eps[:k], eps[k:])
                    fs.differences[Statistic.ERROR_DIFFERENCE][ti, start:stop] = error_difference(eps[:k], eps[k:], noise)
                if keep_maps:
                    fs.maps[ti, start:stop] = g.numpy().astype(np.float16)
                if pixels_per_image:
                    flat = g.flatten(2)  # (k, C, f*f)
                    idx = torch.from_numpy(chosen[start:stop])[:, None, :].expand(-1, flat.shape[1], -1)
                    fs.pixels[ti, start:stop] = flat.gather(2, idx).transpose(1, 2).numpy().astype(np.float16)
                fs.pooled[ti, start:stop] = MalignancyHead.pool(g, small_masks[start:stop]).numpy()
                bar.update(k)
    return fs
