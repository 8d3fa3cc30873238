"""Masks as the store keeps them: 1-bit PNG bytes (the same encoding as the sidecar files),
so a 1 MP mask takes a few kilobytes and any PNG reader opens it."""

from __future__ import annotations

import cv2
import numpy as np


def encode_mask(mask: np.ndarray) -> bytes:
    """HxW bool (or 0/1) mask -> 1-bit greyscale PNG bytes (bilevel, fast deflate)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"a mask is a non-empty HxW array, got shape {mask.shape}")
    levels = np.ascontiguousarray(mask.astype(bool)).view(np.uint8) * np.uint8(255)
    ok, buffer = cv2.imencode(".png", levels, [cv2.IMWRITE_PNG_BILEVEL, 1,
                                                cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"could not encode a {mask.shape} mask as PNG")
    return buffer.tobytes()


def decode_mask(png: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
    """1-bit (or 8-bit) PNG bytes -> HxW bool. Raises ValueError when unreadable or, given
    ``shape`` (height, width), of another size."""
    levels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if levels is None:
        raise ValueError("the stored mask is not a readable PNG")
    if shape is not None and levels.shape != tuple(shape):
        raise ValueError(f"the stored mask is {levels.shape}, expected {tuple(shape)}")
    return levels > 127
