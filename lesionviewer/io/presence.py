"""Which lesionviewer has a photo open: a small marker file beside its sidecar, so a second
window or program opening the same case can tell the user before both edit it.

The marker is a hidden file beside the photo, ``.~lesionviewer-open.<photo name>`` (as
LibreOffice's ``.~lock.<name>#``: out of sight, skipped by folder scans). It holds ``{"pid",
"host", "owner", "since"}``; ``owner`` tells apart two windows of one process. A marker whose process is gone (same host, pid not
running: kill -9, a crash) or older than :data:`STALE_AFTER_S` is stale and taken over. This
only warns: what keeps both windows' edits is the check at save time
(:func:`lesionviewer.io.sidecar.save_sidecar`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from lesionviewer.io.atomic import HOST, atomic_write_bytes, pid_alive
from lesionviewer.io.naming import fit_name

log = logging.getLogger(__name__)
PRESENCE_PREFIX = ".~lesionviewer-open."
STALE_AFTER_S = 12 * 3600  # a marker from another host cannot be checked: trust it this long


def presence_path(image_path: str | os.PathLike) -> Path:
    image_path = Path(image_path)
    return image_path.with_name(PRESENCE_PREFIX + fit_name(image_path.name, 160))


def claim(image_path: str | os.PathLike, owner: str) -> dict | None:
    """Mark the photo as open by ``owner``. Returns the other holder's record (pid, host,
    since) when another live lesionviewer has it open, else None. Never raises: where no
    marker can be written (a read-only folder) nothing is detected."""
    path = presence_path(image_path)
    mine = {"pid": os.getpid(), "host": HOST, "owner": owner, "since": time.time()}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = _holder(path)
        if holder is not None and holder.get("owner") != owner and not _stale(holder):
            return holder
        try:
            atomic_write_bytes(path, json.dumps(mine).encode())
        except OSError as exc:
            log.info("cannot mark %s as open: %s", image_path, exc)
        return None
    except OSError as exc:
        log.info("cannot mark %s as open: %s", image_path, exc)
        return None
    try:
        os.write(fd, json.dumps(mine).encode())
    finally:
        os.close(fd)
    return None


def release(image_path: str | os.PathLike, owner: str) -> None:
    """Remove the marker if ``owner`` holds it (the case left the screen)."""
    path = presence_path(image_path)
    holder = _holder(path)
    if holder is not None and holder.get("owner") == owner:
        try:
            path.unlink()
        except OSError:
            pass


def describe(holder: dict) -> str:
    since = holder.get("since")
    when = time.strftime("%H:%M", time.localtime(since)) if isinstance(since, (int, float)) \
        else "?"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {when}"


def _holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or half-written: a stranger's, judged by age below
    return holder if isinstance(holder, dict) else {}


def _stale(holder: dict) -> bool:
    since = holder.get("since")
    if not isinstance(since, (int, float)) or time.time() - since > STALE_AFTER_S:
        return True
    pid = holder.get("pid")
    return holder.get("host") == HOST and isinstance(pid, int) and pid != os.getpid() \
        and not pid_alive(pid)
