"""Pixel conversions behind :func:`lesionviewer.io.images.load_image`: any decoded layout to
``HxWx3 uint8 RGB``. Kept apart so images.py reads as the loading policy only."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)
try:  # OpenCV prints its own decoder warnings to stderr; a failed decode is reported by us
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:  # builds without the logging module
    pass

#: round(v * 255 / 65535) for every 16-bit value v.
_SIXTEEN_TO_EIGHT = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def pil_bit_depth(im: Image.Image) -> int:
    """Bits per channel of a Pillow image as decoded."""
    if im.mode == "1":
        return 1
    if im.mode.startswith("I;16"):
        return 16
    if im.mode in ("I", "F"):
        return 32
    return 8


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB from any Pillow mode (first frame)."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = scale_to_uint8(np.asarray(im), mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return composite_on_white(rgba)
    return np.array(im if im.mode == "RGB" else im.convert("RGB"))


def scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """HxW[xC] 16-bit, 32-bit int or float values -> uint8 (16 bit: round(v * 255 / 65535);
    float: 0..1 scaled to 0..255, or divided by the maximum when it exceeds 1)."""
    if values.dtype == np.uint8:
        return values
    if mode == "F" or values.dtype.kind == "f":
        finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = finite.max() if finite.size else 1.0
        scale = 255.0 if top <= 1.0 else 255.0 / top
        return np.clip(np.rint(finite * scale), 0, 255).astype(np.uint8)
    if mode == "I" and values.size and values.max() <= 255 and values.min() >= 0:
        return values.astype(np.uint8)
    if values.dtype != np.uint16:
        values = np.clip(values, 0, 65535).astype(np.uint16)
    return _SIXTEEN_TO_EIGHT[values]  # a table lookup: no wide temporaries for 50 MP photos



def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """HxWx4 (uint8 or uint16) -> HxWx3 uint8 over a white background."""
    if rgba.dtype == np.uint16:
        rgba = _SIXTEEN_TO_EIGHT[rgba]
    alpha = rgba[..., 3:4].astype(np.uint16)
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    color = rgba[..., :3].astype(np.uint16)
    blended = (color * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def png_bit_depth(path: Path) -> int | None:
    """The bit depth in a PNG header, or None for any other file."""
    try:
        with open(path, "rb") as f:
            head = f.read(25)
    except OSError:
        return None
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def png16_to_rgb(path: Path) -> np.ndarray:
    """16-bit colour PNGs: Pillow would drop the low byte, OpenCV keeps all 16 bits."""
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile copes with Unicode paths
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3:
        raise ValueError("16-bit PNG could not be decoded")
    if decoded.shape[2] == 4:
        return composite_on_white(decoded[..., [2, 1, 0, 3]])
    return scale_to_uint8(decoded[..., ::-1], "I;16")


#: Start-of-frame markers of Huffman-coded JPEGs (baseline, extended, progressive, lossless).
_HUFFMAN_SOF = (0xC0, 0xC1, 0xC2, 0xC3)
_ARITHMETIC_SOF = (0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def jpeg_frame_marker(path: Path) -> int | None:
    """The start-of-frame marker (0xC0..0xCF) of a JPEG file, or None when none is found
    before the first scan (not a JPEG, or a damaged header)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return None
            for _ in range(10_000):
                byte = f.read(1)
                while byte == b"\xff":  # fill bytes before a marker
                    byte = f.read(1)
                if not byte:
                    return None
                marker = byte[0]
                if marker in _HUFFMAN_SOF or marker in _ARITHMETIC_SOF:
                    return marker
                if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame before
                    return None
                if 0xD0 <= marker <= 0xD7 or marker == 0x01:
                    continue  # markers without a length
                length = f.read(2)
                if len(length) < 2:
                    return None
                f.seek(int.from_bytes(length, "big") - 2, 1)
                if f.read(1) != b"\xff":
                    return None
    except OSError:
        return None
    return None


def jpeg_too_short(path: Path, width: int, height: int) -> bool:
    """True when a Huffman-coded JPEG's file cannot hold the pixels its header claims.

    Every 8x8 block of the full-resolution channel needs at least one bit (its DC code) in
    any Huffman-coded JPEG, sequential or progressive, so a file smaller than
    ``ceil(W/8) * ceil(H/8) / 8`` bytes was cut short or had its size field altered; libjpeg
    would only warn ("premature end of data segment") and fill the rest with grey.
    Arithmetic-coded JPEGs (rare) are not judged.
    """
    if jpeg_frame_marker(path) not in _HUFFMAN_SOF:
        return False
    blocks = -(-int(width) // 8) * -(-int(height) // 8)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size * 8 < blocks


class PixelLimitExceeded(Exception):
    """The image has more pixels than allowed; ``width`` and ``height`` say how many."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(f"{width} x {height} pixels")
        self.width, self.height = width, height


def read_plain_tiff(path: Path, max_pixels: int) -> tuple[np.ndarray, int, int] | None:
    """Grayscale/RGB TIFFs via tifffile, keeping full 16-bit precision before scaling.

    Returns (HxWx3 uint8 RGB as stored, not yet oriented; bits per sample; TIFF orientation
    tag 1..8), or None when tifffile cannot or should not read it (palette, CMYK, YCbCr, a
    missing codec): Pillow then tries. Raises PixelLimitExceeded above ``max_pixels``.
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            photometric = page.photometric
            if photometric not in (
                tifffile.PHOTOMETRIC.MINISBLACK,
                tifffile.PHOTOMETRIC.MINISWHITE,
                tifffile.PHOTOMETRIC.RGB,
            ):
                return None
            width, height = int(page.imagewidth), int(page.imagelength)
            if width * height > max_pixels:
                raise PixelLimitExceeded(width, height)
            tag = page.tags.get(274)  # TIFF Orientation uses the same 1..8 codes as EXIF
            orientation = int(tag.value) if tag is not None else 1
            array = page.asarray()
            bit_depth = int(page.bitspersample)
            extrasamples = tuple(page.extrasamples or ())
            planar_separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    except PixelLimitExceeded:
        raise
    except Exception as exc:  # codec missing, odd layout, not really a TIFF: Pillow decides
        log.debug("tifffile could not read %s (%r); trying Pillow", path, exc)
        return None
    if planar_separate and array.ndim == 3:
        array = np.moveaxis(array, 0, -1)
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[2] in (1, 2, 3, 4)):
        return None
    if array.dtype.kind not in "uif" or array.dtype.itemsize > 4:
        return None
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        eight = array if array.dtype == np.uint8 else scale_to_uint8(array, "I;16")
    else:
        eight = scale_to_uint8(array, "F" if array.dtype.kind == "f" else "I")
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        eight = 255 - eight
    if eight.ndim == 2:
        eight = eight[:, :, None]
    channels = eight.shape[2]
    color = eight[..., :3] if channels >= 3 else np.repeat(eight[..., :1], 3, axis=2)
    if extrasamples and channels in (2, 4):
        color = composite_on_white(np.concatenate([color, eight[..., -1:]], axis=2))
    return color, bit_depth, orientation if 1 <= orientation <= 8 else 1
