"""In-memory training sets at the model's working resolution, with augmentation.

ISIC images are small (256x256), so the whole train split fits in memory at the working size
(2161 x 96 x 96 x 3 bytes = 60 MB), which keeps a CPU training step free of disk reads.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from lesionviewer.training.cases import CaseRecord


@dataclasses.dataclass
class ArraySet:
    images: np.ndarray  # N x S x S x 3 uint8 RGB
    masks: np.ndarray  # N x S x S bool
    malignant: np.ndarray  # N int8: 1, 0, -1 unknown
    ids: list[str]


def read_rgb(path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def read_mask(path) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise OSError(f"cannot read {path}")
    return m > 127


def load_arrays(cases: list[CaseRecord], size: int, progress=None) -> ArraySet:
    """Read every case's image and mask, resized to ``size`` x ``size`` (area / nearest)."""
    images = np.zeros((len(cases), size, size, 3), np.uint8)
    masks = np.zeros((len(cases), size, size), bool)
    for i, case in enumerate(cases):
        images[i] = cv2.resize(read_rgb(case.image_path), (size, size), interpolation=cv2.INTER_AREA)
        if case.mask_path is not None:
            mask = read_mask(case.mask_path).astype(np.uint8)
            masks[i] = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) > 0
        if progress:
            progress(i + 1)
    malignant = np.array([-1 if c.malignant is None else c.malignant for c in cases], np.int8)
    return ArraySet(images, masks, malignant, [c.id for c in cases])


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float32 in -1..1."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def augment(x: torch.Tensor, masks: torch.Tensor | None, gen: torch.Generator, jitter: float = 0.1):
    """Random flips, 90-degree rotations and mild colour jitter, the same geometry for masks.

    x: B x 3 x H x W float in -1..1; masks: B x H x W bool or None.
    """
    k = int(torch.randint(0, 4, (1,), generator=gen))
    flip = bool(torch.randint(0, 2, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    if flip:
        x = x.flip(3)
    if masks is not None:
        masks = torch.rot90(masks, k, dims=(1, 2))
        if flip:
            masks = masks.flip(2)
    b = x.shape[0]
    brightness = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
    saturation = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * saturation + grey
    x = (x + 1) * brightness - 1
    return x.clamp(-1, 1), masks


def patch_index(masks: np.ndarray, patch: int, stride: int, min_lesion: float) -> tuple[np.ndarray, np.ndarray]:
    """Patch corners (n, y, x) at the working scale: lesion patches (>= min_lesion lesion pixels)
    and healthy-skin patches (no lesion pixel). This is the backbone's only use of the masks."""
    lesion, healthy = [], []
    size = masks.shape[1]
    for n, m in enumerate(masks):
        integral = cv2.integral(m.astype(np.uint8))
        for y in range(0, size - patch + 1, stride):
            for x in range(0, size - patch + 1, stride):
                count = integral[y + patch, x + patch] - integral[y, x + patch] - integral[y + patch, x] + integral[y, x]
                if count == 0:
                    healthy.append((n, y, x))
                elif count >= min_lesion * patch * patch:
                    lesion.append((n, y, x))
    return np.array(lesion, np.int32).reshape(-1, 3), np.array(healthy, np.int32).reshape(-1, 3)


def crop_patches(images: np.ndarray, corners: np.ndarray, patch: int) -> np.ndarray:
    return np.stack([images[n, y:y + patch, x:x + patch] for n, y, x in corners])

