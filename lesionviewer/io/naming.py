"""Names of result files: one distinct, writable name per input photo.

Two photos may share a file name (``day1/case.jpg`` and ``day2/case.jpg``, or ``case.jpg`` and
``case.png`` side by side), and a photo's name may be too long to take an ending such as
``_segmentation.png``. :func:`output_ids` gives every photo of one run its own relative id,
mirroring the photos' folders under their common parent, so no result ever replaces another
within a run; :func:`fit_name` shortens an over-long name deterministically.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

#: Most file systems (ext4, APFS, NTFS) allow 255 bytes per name.
MAX_NAME_BYTES = 255
#: Room kept after a stem for the longest ending ("_segmentation.png"), a "_jpeg-2" style
#: disambiguation and a temporary-file wrapper (".<name>.<random>.tmp").
STEM_RESERVE_BYTES = 56
MAX_STEM_BYTES = MAX_NAME_BYTES - STEM_RESERVE_BYTES


def fit_name(name: str, max_bytes: int = MAX_STEM_BYTES) -> str:
    """``name`` itself when its UTF-8 form fits in ``max_bytes``; otherwise its start cut at a
    character boundary plus ``~`` and 8 hex digits of the SHA-256 of the whole name, so two
    long names that share their start still differ, and the same name always gives the same
    result."""
    encoded = name.encode("utf-8")
    if len(encoded) <= max_bytes:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:8]
    head = encoded[: max_bytes - 9].decode("utf-8", errors="ignore").rstrip(" .")
    return f"{head}~{digest}"


def common_base(folders: Sequence[str | os.PathLike]) -> Path | None:
    """The deepest folder holding all ``folders`` (absolute, symlinks not resolved), or None
    when they share none (different Windows drives)."""
    absolute = [os.path.abspath(f) for f in folders]
    if not absolute:
        return None
    try:
        return Path(os.path.commonpath(absolute))
    except ValueError:
        return None


def output_ids(photos: Sequence[tuple[str | os.PathLike, str | os.PathLike]]) -> list[str]:
    """One distinct relative id (POSIX path, no suffix) per ``(photo, folder it was found
    in)`` pair, in the given order.

    The id is the photo's path relative to the common parent of all the folders, without its
    suffix: a single folder gives ``sub/name``, ``day1`` and ``day2`` give ``day1/case`` and
    ``day2/case``. Each part is shortened with :func:`fit_name` when too long. Ids that still
    coincide (ignoring case, as macOS and Windows do) get the photo's suffix (``case_jpg``,
    ``case_png``) and, if that is not enough, a number (``case_jpg-2``), in input order, so a
    rerun gives the same names. The same photo listed twice gets two ids; callers drop
    duplicates first (:func:`unique_photos`).
    """
    base = common_base([folder for _, folder in photos])
    ids = []
    for photo, folder in photos:
        photo = Path(os.path.abspath(photo))
        try:
            relative = photo.relative_to(base) if base is not None else Path(photo.name)
        except ValueError:
            relative = Path(photo.name)
        parts = [fit_name(p, MAX_NAME_BYTES) for p in relative.parent.parts]
        parts.append(fit_name(relative.stem))
        ids.append("/".join(parts))
    counts = Counter(i.casefold() for i in ids)
    taken = {i.casefold() for i in ids if counts[i.casefold()] == 1}
    result = []
    for (photo, _), candidate in zip(photos, ids):
        if counts[candidate.casefold()] > 1:
            tagged = f"{candidate}_{Path(photo).suffix.lstrip('.').lower() or 'file'}"
            candidate, n = tagged, 2
            while candidate.casefold() in taken:
                candidate, n = f"{tagged}-{n}", n + 1
        taken.add(candidate.casefold())
        result.append(candidate)
    return result


def unique_photos(photos: Sequence[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """``photos`` without repeats of the same file (same absolute path), first one kept."""
    seen, kept = set(), []
    for photo, folder in photos:
        key = os.path.normcase(os.path.abspath(photo))
        if key not in seen:
            seen.add(key)
            kept.append((photo, folder))
    return kept
