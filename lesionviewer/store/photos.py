"""What the store records about a photo file: its content hash, size and pixel size."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lesionviewer.io.hashing import content_hash

log = logging.getLogger(__name__)
_EXIF_ORIENTATION = 0x0112
_TURNED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def photo_uri(path: Path) -> str:
    """The photo's absolute path, as the store keeps it (POSIX slashes)."""
    return Path(path).expanduser().resolve().as_posix()


def photo_facts(path: Path) -> dict[str, Any]:
    """{"uri", "sha256", "size", "width", "height"} of a photo; width/height as the app shows
    it (EXIF orientation applied), None when the header cannot be read. Raises OSError when
    the file cannot be read."""
    path = Path(path)
    facts: dict[str, Any] = {"uri": photo_uri(path), "sha256": content_hash(path),
                             "size": path.stat().st_size, "width": None, "height": None}
    try:
        from lesionviewer.io.images import open_image_file

        with open_image_file(path) as im:
            width, height = im.size
            try:
                turned = int(im.getexif().get(_EXIF_ORIENTATION, 1)) in _TURNED
            except Exception:  # a broken EXIF block: the app opens it unturned too
                turned = False
        facts["width"], facts["height"] = (height, width) if turned else (width, height)
    except Exception as exc:  # noqa: BLE001 - an unreadable header leaves the size unknown
        log.info("pixel size of %s unknown: %s", path.name, exc)
    return facts
