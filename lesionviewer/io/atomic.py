"""Writing files so that a crash or a full disk never leaves a half-written file behind.

Each write goes to a temporary file in the destination folder, is flushed to disk (fsync), and
then replaces the destination in one step (``os.replace``), so readers see either the old file
or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
_UMASK = os.umask(0)
os.umask(_UMASK)
HOST = socket.gethostname()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + os.replace); returns the path.

    The folder must exist. The new file gets the usual permissions (0666 minus the umask).
    Raises OSError (e.g. PermissionError for a read-only folder); no temp file is left behind.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)
    _sweep_leftovers(path.parent)
    return path


# A write never takes this long, so a temp file this old was left by a kill -9 or power cut.
LEFTOVER_AGE_S = 3600.0
_swept_folders: set[str] = set()
_LEFTOVER_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # atomic_write_bytes's mkstemp names


def _sweep_leftovers(folder: Path) -> None:
    """Remove the hidden ``.NAME.*.tmp`` files that killed writes left in ``folder``.

    Once per folder per process (a folder may hold thousands of photos), only files older
    than :data:`LEFTOVER_AGE_S`, so a write in progress in another program is never touched.
    """
    key = os.fspath(folder)
    if key in _swept_folders:
        return
    _swept_folders.add(key)
    cutoff = time.time() - LEFTOVER_AGE_S
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _LEFTOVER_NAME.match(entry.name):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        log.info("removed %s, left by an interrupted save", entry.path)
                except OSError:
                    pass
    except OSError:
        pass


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as UTF-8 JSON (indented, keys in given order) atomically; returns the path.

    numpy scalars and arrays, tuples and Paths are converted; NaN and infinities become null
    so that every JSON reader accepts the file.
    """
    text = json.dumps(to_json_ready(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def to_json_ready(obj: Any) -> Any:
    """A copy of ``obj`` made only of dict/list/str/int/float/bool/None (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json_ready(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "value") and isinstance(getattr(obj, "value"), (str, int)):  # enums
        return obj.value
    return obj


class LockBusy(OSError):
    """Another live process holds the lock; ``str(error)`` names it (pid and host)."""


@contextlib.contextmanager
def lock_file(path: str | os.PathLike, timeout_s: float = 3.0, stale_after_s: float = 60.0
              ) -> Iterator[Path]:
    """Hold ``path`` as an exclusive lock file (created with O_EXCL, removed on exit).

    The file records ``{"pid", "host", "time"}`` of its holder. A lock left behind by a
    process that died (kill -9, power cut) is stale and taken over: on the same host when its
    pid no longer runs, anywhere when it is older than ``stale_after_s`` (locks are held for
    one save, well under a second). Waits up to ``timeout_s`` for a live holder, then raises
    :class:`LockBusy`; other OSErrors (a read-only folder) are raised at once.
    """
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    stamp = json.dumps({"pid": os.getpid(), "host": HOST, "time": time.time()}).encode()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is None or _is_stale(holder, stale_after_s):
                _break_stale_lock(path, holder)
                continue
            if time.monotonic() > deadline:
                raise LockBusy(f"another program (pid {holder.get('pid')} on "
                               f"{holder.get('host')}) holds {path.name}") from None
            time.sleep(0.05)
            continue
        try:
            os.write(fd, stamp)
        finally:
            os.close(fd)
        break
    try:
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (POSIX; elsewhere assumed yes)."""
    if os.name != "posix" or pid <= 0:
        return os.name != "posix"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _lock_holder(path: Path) -> dict | None:
    """The holder recorded in a lock file; {} while it is being written, None if it vanished."""
    try:
        text = path.read_text(encoding="utf-8")
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text) if text else {}
    except ValueError:
        holder = {}
    holder = holder if isinstance(holder, dict) else {}
    holder["_age"] = age
    return holder


def _is_stale(holder: dict, stale_after_s: float) -> bool:
    age = holder.get("_age", 0.0)
    pid = holder.get("pid")
    if age > stale_after_s or (pid is None and age > 2.0):
        return True  # an empty lock: its maker died between creating and filling it
    return holder.get("host") == HOST and isinstance(pid, int) and pid != os.getpid() \
        and not pid_alive(pid)


def _break_stale_lock(path: Path, holder: dict | None) -> None:
    if holder is None:
        return  # released meanwhile: just try again
    log.warning("taking over the stale lock %s (pid %s on %s)", path, holder.get("pid"),
                holder.get("host"))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
