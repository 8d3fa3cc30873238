"""Photos the model was not trained on, to measure the out-of-distribution warning.

* scikit-image's bundled sample photos (no download: those that need one are skipped);
* phone-style composites of dermoscopy photos: the lesion photo small in a large skin-toned
  frame (a clinical photo taken from a distance), focus blur, heavy JPEG compression and a
  colour cast, in a fixed rotation of combinations so each kind is measured.
"""

from __future__ import annotations

import cv2
import numpy as np

COMPOSITE_KINDS = ("frame", "frame+blur", "frame+jpeg", "frame+cast", "blur+jpeg+cast")


def skimage_photos() -> list[tuple[str, np.ndarray]]:
    """(name, HxWx3 uint8 RGB) for every sample image scikit-image ships in its wheel."""
    import skimage.data as data  # dev extra: only the evaluation needs it

    out = []
    for name in sorted(getattr(data, "__all__", dir(data))):
        if name.startswith("_") or name in {"data_dir", "download_all", "file_hash", "lfw_subset",
                                            "lbp_frontal_face_cascade_filename", "cells3d", "brain",
                                            "kidney", "nickel_solidification", "protein_transport",
                                            "vortex", "shepp_logan_phantom", "binary_blobs"}:
            continue
        try:
            image = getattr(data, name)()
        except Exception:  # needs a download (pooch) or an optional reader: not bundled
            continue
        if isinstance(image, tuple):
            image = image[0]
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] < 3 or min(image.shape[:2]) < 32:
            continue
        image = image[..., :3]
        if image.dtype != np.uint8:
            image = image.astype(np.float64)
            span = image.max() - image.min()
            image = ((image - image.min()) / (span if span > 0 else 1.0) * 255).round().astype(np.uint8)
        out.append((name, np.ascontiguousarray(image)))
    return out


# RGB skin tones from very light to dark (a Fitzpatrick-like palette); a frame mixes two neighbours.
SKIN_TONES = np.array([(241, 214, 196), (228, 185, 160), (210, 160, 125), (180, 128, 90),
                       (140, 94, 62), (95, 62, 42)], np.float32)


def _skin_frame(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A skin-toned canvas with a soft lighting gradient and grain (HxWx3 float32, 0..255)."""
    i = int(rng.integers(0, len(SKIN_TONES) - 1))
    colour = SKIN_TONES[i] + rng.uniform() * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    light = 1.0 + 0.25 * (ramp - ramp.mean())
    canvas = colour[None, None] * light[..., None] + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
    return canvas


def phone_composite(photo: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """photo: HxWx3 uint8 RGB dermoscopy -> HxWx3 uint8 RGB composite of the given kind."""
    parts = kind.split("+")
    image = photo.astype(np.float32)
    if "frame" in parts:
        h, w = photo.shape[:2]
        factor = rng.uniform(3.0, 5.0)
        H, W = int(h * factor), int(w * factor)
        canvas = _skin_frame((H, W), rng)
        y0, x0 = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        # feathered edge: the photo fades into the frame over ~15% of its side
        edge = np.minimum.reduce([yy, xx, h - 1 - yy, w - 1 - xx]) / (0.15 * min(h, w))
        alpha = np.clip(edge, 0, 1)[..., None]
        canvas[y0:y0 + h, x0:x0 + w] = alpha * image + (1 - alpha) * canvas[y0:y0 + h, x0:x0 + w]
        image = canvas
    if "blur" in parts:
        sigma = rng.uniform(2.0, 4.0) * max(image.shape[:2]) / 256
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if "cast" in parts:
        gains = np.array([rng.uniform(1.15, 1.35), 1.0, rng.uniform(0.65, 0.85)], np.float32)
        if rng.random() < 0.5:
            gains = gains[::-1].copy()  # a cold cast instead of a warm one
        image = image * gains
    image = np.clip(image, 0, 255).round().astype(np.uint8)
    if "jpeg" in parts:
        quality = int(rng.integers(5, 16))
        ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]) if ok else image
    return image


def composites(photos: list[np.ndarray], seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """One composite per photo, kinds in rotation; returns (images, kinds)."""
    rng = np.random.default_rng(seed)
    kinds = [COMPOSITE_KINDS[i % len(COMPOSITE_KINDS)] for i in range(len(photos))]
    return [phone_composite(p, k, rng) for p, k in zip(photos, kinds)], kinds
