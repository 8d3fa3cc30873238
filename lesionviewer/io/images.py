"""Opening photos and masks from disk, as the clinician took them.

Every photo comes out as one ``HxWx3 uint8 RGB`` array, displayed the way the camera meant it
(EXIF orientation applied in memory; the file on disk is never rewritten). Every failure is an
:class:`ImageLoadError` whose text is one sentence naming the file, fit for a message box.

Pixel convention used throughout lesionviewer: pixel (row i, column j) covers
``[j, j + 1) x [i, i + 1)`` in full-resolution image coordinates (x right, y down).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import stat
import warnings
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

from lesionviewer.io.pixels import (
    PixelLimitExceeded,
    jpeg_too_short,
    pil_bit_depth,
    pil_to_rgb,
    png16_to_rgb,
    png_bit_depth,
    read_plain_tiff,
)

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()
# A cut-short file must fail, never come back grey-filled (Pillow's default; set again in case
# a library imported earlier changed it for the whole process).
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Suffixes :func:`find_images` lists (lower case). :func:`load_image` sniffs the contents, so a
#: PNG misnamed ``.jpg`` still opens.
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif")

#: Above this many pixels an image is refused (a 120 MP RGB photo is 360 MB in memory).
MAX_PIXELS = 120_000_000

#: Name endings of ground-truth masks (ISIC ``_segmentation``, our samples ``_mask``).
MASK_NAME_ENDINGS = ("_mask", "_segmentation")
#: Name endings of files lesionviewer itself writes next to photos (sidecars, any suffix)...
SIDECAR_ENDINGS = (".lesionviewer", ".lesionviewer-mask")
#: ...and of the PNG maps it writes into export folders.
EXPORT_PNG_ENDINGS = ("_probability", "_variance", "_overlay", "_consensus")  # exports and `analyze` outputs
#: Folders lesionviewer writes (cache, exports) that :func:`find_images` never enters.
OWN_FOLDER_NAMES = ("lesionviewer-cache", "lesionviewer-export")

_EXIF_ORIENTATION = 0x0112
_TIFF_SUFFIXES = (".tif", ".tiff")


class ImageLoadError(Exception):
    """A photo or mask could not be opened; ``str(error)`` is one sentence naming the file."""


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A photo ready for display and analysis.

    rgb: HxWx3 uint8 RGB, C-contiguous, orientation already applied (H = height, W = width).
    path: the file it came from.
    source_format: the decoder's name for the contents, e.g. "JPEG", "PNG", "TIFF", "HEIF".
    bit_depth: bits per channel in the file (8 or 16; 1 for bilevel, 32 for float TIFF).
    exif_orientation: the EXIF orientation tag found (1..8; 1 = stored upright).
    width, height: of ``rgb``, i.e. after orientation.
    """

    rgb: np.ndarray
    path: Path
    source_format: str
    bit_depth: int
    exif_orientation: int
    width: int
    height: int


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Decode one photo to ``HxWx3 uint8 RGB`` at full resolution.

    Handles JPEG, PNG, TIFF (8 and 16 bit), BMP, WebP and HEIC/HEIF. Grayscale becomes RGB,
    alpha is composited on white, CMYK and palette images are converted to RGB, 16-bit values
    are scaled to 8 bit over the full range (``round(v * 255 / 65535)``). Only the first frame
    of a multi-page file is read. Colour profiles are not applied.

    Raises ImageLoadError for a missing, empty, unreadable, damaged or non-image file, or one
    with more than :data:`MAX_PIXELS` pixels.
    """
    path = Path(path)
    _check_readable_file(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        try:
            plain = read_plain_tiff(path, MAX_PIXELS)
        except PixelLimitExceeded as exc:
            raise _too_large(path, (exc.width, exc.height)) from None
        if plain is not None:
            stored, bit_depth, orientation = plain
            rgb = np.ascontiguousarray(apply_orientation(stored, orientation))
            return LoadedImage(rgb, path, "TIFF", bit_depth, orientation, rgb.shape[1], rgb.shape[0])
    with _open_pil(path) as im:
        source_format = im.format or "unknown"
        try:
            if png_bit_depth(path) == 16 and im.mode in ("RGB", "RGBA"):
                array, bit_depth = png16_to_rgb(path), 16
            else:
                im.load()
                array, bit_depth = pil_to_rgb(im), pil_bit_depth(im)
        except MemoryError:
            raise ImageLoadError(f"Cannot open '{path.name}': not enough memory to decode it.") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _damaged(path, exc) from exc
        # pillow-heif applies the HEIF rotation itself and records what the EXIF tag said.
        if "original_orientation" in im.info:
            orientation, already_applied = int(im.info["original_orientation"] or 1), True
        else:
            orientation, already_applied = _exif_orientation(im), False
    if not already_applied:
        array = apply_orientation(array, orientation)
    rgb = np.ascontiguousarray(array)
    return LoadedImage(rgb, path, source_format, bit_depth, orientation, rgb.shape[1], rgb.shape[0])


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored ``HxW[xC]`` array upright according to an EXIF orientation tag (1..8).

    Matches ``PIL.ImageOps.exif_transpose``; unknown tag values leave the array as it is.
    """
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return np.rot90(array, k=2).swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


def load_mask(path: str | os.PathLike, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a lesion mask as ``HxW bool`` (True = lesion).

    Accepts 0/255 (or 0/1) grayscale, palette (index > 0 is lesion), RGB (any channel >= 128)
    and 16-bit masks. When ``shape`` ((H, W) or (H, W, C)) differs from the file's size the
    mask is resized with nearest-neighbour sampling. Raises ImageLoadError on a bad file.
    """
    path = Path(path)
    _check_readable_file(path)
    with _open_pil(path) as im:
        try:
            im.load()
            if im.mode == "P":
                values = np.asarray(im) > 0
            elif im.mode == "1":
                values = np.asarray(im).astype(bool)
            else:
                values = _mask_from_levels(np.asarray(im))
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _damaged(path, exc) from exc
    mask = np.ascontiguousarray(values, dtype=bool)
    if shape is not None and tuple(shape[:2]) != mask.shape:
        height, width = int(shape[0]), int(shape[1])
        resized = cv2.resize(mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        mask = resized.astype(bool)
    return mask


def _mask_from_levels(levels: np.ndarray) -> np.ndarray:
    if levels.ndim == 3:
        channels = levels.shape[2]
        levels = levels[..., :3] if channels >= 3 else levels[..., :1]
        levels = levels.max(axis=2)
    top = float(levels.max()) if levels.size else 0.0
    if top <= 1:
        return levels > 0
    half = 32768 if levels.dtype in (np.uint16, np.int32) and top > 255 else 128
    return levels >= half


def find_images(folder: str | os.PathLike, recursive: bool = True,
                problems: list[str] | None = None) -> list[Path]:
    """Photos under ``folder`` (sub-folders too when ``recursive``), in natural name order.

    Lists entries with a :data:`SUPPORTED_SUFFIXES` suffix and skips ground-truth masks
    (``*_mask.*``, ``*_segmentation.*``), lesionviewer's own sidecars and exports
    (``*.lesionviewer*``, ``*_probability.png``, ``*_variance.png``, ``*_overlay.png``, ``*_consensus.png``), hidden files and
    hidden or lesionviewer folders. Links to folders are not followed (no loops). Entries
    with a photo's name that are not readable files (a FIFO, a broken or looping link) are
    listed, so the caller reports them: :func:`load_image` refuses them in one sentence
    without ever opening them. Unreadable sub-folders are skipped with a logged warning and
    one sentence each appended to ``problems`` when given.
    Raises NotADirectoryError (clear text) when ``folder`` is not an existing folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"'{root}' is not a folder that exists.")
    found: list[Path] = []

    def warn(error: OSError) -> None:
        log.warning("skipping %s: %s", error.filename, error.strerror)
        if problems is not None:
            problems.append(f"'{error.filename}': the folder cannot be read "
                            f"({error.strerror or error}); its photos are skipped.")

    for dirpath, dirnames, filenames in os.walk(root, onerror=warn):
        if recursive:
            dirnames[:] = [d for d in dirnames if not _is_skipped_folder(d)]
        else:
            dirnames[:] = []
        found.extend(Path(dirpath) / name for name in filenames if _is_photo_name(name))
    return sorted(found, key=lambda p: _natural_key(p.relative_to(root)))


def reference_mask_for(image_path: str | os.PathLike) -> Path | None:
    """The ground-truth mask next to a photo (``<stem>_mask.png``, then
    ``<stem>_segmentation.png``), or None when there is none."""
    image_path = Path(image_path)
    for ending in MASK_NAME_ENDINGS:
        candidate = image_path.with_name(image_path.stem + ending + ".png")
        try:
            if stat.S_ISREG(os.stat(candidate).st_mode):
                return candidate
        except OSError:  # absent, a loop, or a name too long to exist (a 244-character photo)
            continue
    return None


def _is_photo_name(name: str) -> bool:
    if name.startswith("."):
        return False
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    stem = stem.lower()
    if stem.endswith(MASK_NAME_ENDINGS + SIDECAR_ENDINGS):
        return False
    return not (suffix.lower() == ".png" and stem.endswith(EXPORT_PNG_ENDINGS))


def _is_skipped_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in OWN_FOLDER_NAMES or name == "__pycache__"


def _natural_key(relative: Path) -> list:
    """Sort "img2" before "img10", case-insensitively, folder by folder."""
    key = []
    for part in relative.parts:
        key.append([int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", part)])
    return key


def check_regular_file(path: str | os.PathLike) -> None:
    """Raise ImageLoadError (one sentence) unless ``path`` is a readable, non-empty regular file.

    Never blocks: a FIFO, socket or device named like a photo is refused from its ``stat``
    before anything opens it, and the file is opened non-blocking and checked again.
    """
    path = Path(path)
    name = path.name
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageLoadError(f"Cannot open '{name}': it is a symbolic link that leads back to "
                                 f"itself (a link loop).") from None
        if exc.errno == errno.ENOENT:
            if os.path.islink(path):
                raise ImageLoadError(f"Cannot open '{name}': it is a link to a file that does "
                                     f"not exist ({os.readlink(path)}).") from None
            raise ImageLoadError(f"Cannot open '{name}': the file does not exist ({path}).") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise ImageLoadError(f"Cannot open '{name[:60]}…': the name is too long for this "
                                 f"system.") from None
        raise ImageLoadError(f"Cannot open '{name}': {exc.strerror or exc}.") from None
    _refuse_non_regular(name, info.st_mode)
    if info.st_size == 0:
        raise ImageLoadError(f"Cannot open '{name}': the file is empty (0 bytes).")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError:
        raise ImageLoadError(f"Cannot open '{name}': permission to read it was denied.") from None
    except OSError as exc:
        raise ImageLoadError(f"Cannot open '{name}': {exc.strerror or exc}.") from exc
    try:
        _refuse_non_regular(name, os.fstat(fd).st_mode)  # replaced since the stat above
        os.read(fd, 1)
    except OSError as exc:
        raise ImageLoadError(f"Cannot open '{name}': {exc.strerror or exc}.") from exc
    finally:
        os.close(fd)


def _refuse_non_regular(name: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise ImageLoadError(f"Cannot open '{name}': it is a folder, not an image file.")
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a plain file")
    raise ImageLoadError(f"Cannot open '{name}': it is {kind}, not an image file.")


_check_readable_file = check_regular_file


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with links resolved where they can be; a link loop or a broken
    link keeps its own absolute path (Path.resolve raises RuntimeError on a loop in 3.11)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def open_image_file(path: str | os.PathLike) -> Image.Image:
    """A Pillow image opened (not yet decoded) with :func:`load_image`'s checks: a regular,
    non-empty file, a known format, at most :data:`MAX_PIXELS`, a JPEG that can hold the size
    its header claims. For quick previews (draft mode); close it after use. Raises
    ImageLoadError."""
    path = Path(path)
    check_regular_file(path)
    return _open_pil(path)


def _open_pil(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise _too_large(path, None) from None
    except UnidentifiedImageError:
        looks_like = _signature_format(path)
        if looks_like:
            raise ImageLoadError(f"Cannot open '{path.name}': it starts like a {looks_like} file "
                                 f"but is damaged (its header cannot be read).") from None
        raise ImageLoadError(
            f"Cannot open '{path.name}': it is not an image in a supported format "
            f"({', '.join(s.lstrip('.').upper() for s in SUPPORTED_SUFFIXES)})."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _damaged(path, exc) from exc
    try:
        _check_size(path, *im.size)
        if im.format in ("JPEG", "MPO") and jpeg_too_short(path, *im.size):
            raise ImageLoadError(
                f"Cannot open '{path.name}': the file is damaged or incomplete (its header "
                f"claims {im.size[0]} x {im.size[1]} pixels, more than its "
                f"{path.stat().st_size:,} bytes can hold).")
    except ImageLoadError:
        im.close()
        raise
    return im


_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"),
               (b"MM\x00*", "TIFF"), (b"BM", "BMP"), (b"GIF8", "GIF"))


def _signature_format(path: Path) -> str | None:
    """The format whose magic bytes the file starts with, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        return "HEIC"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise _too_large(path, (width, height))
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"Cannot open '{path.name}': the image has no pixels.")


def _too_large(path: Path, size: tuple[int, int] | None) -> ImageLoadError:
    dims = f" ({size[0]} x {size[1]} = {size[0] * size[1] / 1e6:.0f} megapixels)" if size else ""
    return ImageLoadError(
        f"Cannot open '{path.name}': the image is too large{dims}; "
        f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
    )


def _damaged(path: Path, exc: BaseException) -> ImageLoadError:
    log.debug("decoding %s failed: %r", path, exc)
    return ImageLoadError(f"Cannot open '{path.name}': the file is damaged or incomplete ({exc}).")


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not stop the photo from opening
        return 1
    return value if 1 <= value <= 8 else 1


