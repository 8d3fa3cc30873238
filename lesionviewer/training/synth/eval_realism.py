"""Realism: KID (and, for reference, the Fréchet distance) of image sets against real `val`,
in the embedding of the shipped analysis model's own denoiser (:mod:`eval_features`).

Beside the synthetic sets, at the same n: real `train` images (the floor: two samples of real
dermoscopy), and trivial stand-ins made from real `train` pairs, so the scale means something:
the mask painted in two flat colours (mean lesion and mean skin colour of that photo: a
"synthesiser" that copies the mask and nothing else), the photo blurred (sigma 6 px at the
working size), and the photo's pixels shuffled (same colours, no structure).
"""

from __future__ import annotations

import cv2
import numpy as np

from lesionviewer.training.synth.eval_features import embed_images
from lesionviewer.training.synth.kid import frechet_distance, kid

FLOOR = "real train (floor)"
TRIVIAL = ("trivial: mask painted flat", "trivial: blurred photo", "trivial: shuffled pixels")


def painted_flat(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """N x S x S x 3 uint8 RGB, N x S x S bool -> each mask painted in its photo's mean lesion
    colour on its mean skin colour."""
    out = np.empty_like(images)
    for i, (image, mask) in enumerate(zip(images, masks)):
        inside = image[mask].mean(0) if mask.any() else image.reshape(-1, 3).mean(0)
        outside = image[~mask].mean(0) if (~mask).any() else inside
        out[i] = np.where(mask[..., None], inside, outside).astype(np.uint8)
    return out


def blurred(images: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigma) for image in images])


def shuffled_pixels(images: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), -1, 3)
    return np.stack([f[rng.permutation(len(f))] for f in flat]).reshape(images.shape)


def realism_rows(model, val_images: np.ndarray, train_images: np.ndarray, train_masks: np.ndarray,
                 synthetic: dict[str, np.ndarray], n: int, *, timestep: int = 60, seed: int = 0,
                 cache_dir=None) -> list[dict]:
    """One row per set: KID (mean and spread) and Fréchet distance against all of ``val_images``,
    each set cut to its first ``n`` images (the callers pass them in a seeded random order).

    Embeddings are standardised per dimension with the `val` set's mean and spread, the same
    transform for every set, so no single wide feature decides the kernel."""
    def embed(images):
        return embed_images(model, images, timestep=timestep, seed=seed, cache_dir=cache_dir)

    reference = embed(val_images)
    mean, std = reference.mean(0), reference.std(0) + 1e-6
    sets = {FLOOR: train_images, **synthetic,
            TRIVIAL[0]: painted_flat(train_images, train_masks), TRIVIAL[1]: blurred(train_images),
            TRIVIAL[2]: shuffled_pixels(train_images, seed)}
    z_ref = (reference - mean) / std
    rows = []
    for name, images in sets.items():
        z = ((embed(images) - mean) / std)[:n]  # embedded whole, so every n reuses one cache entry
        figures = kid(z, z_ref, seed=seed)
        rows.append({"set": name, "n": len(z), "kid": round(figures["kid"], 4), "kid_std": round(figures["kid_std"], 4),
                     "frechet": round(frechet_distance(z, z_ref), 1)})
    return rows
