"""Identifying a photo by its bytes, so edits and cached analyses follow the content, not the name."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from pathlib import Path

_CHUNK = 1 << 20
_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes as 64 lower-case hex digits, read in 1 MiB chunks.

    Remembers the answer per (absolute path, size, modification and change times, inode), so asking again for an
    unchanged 50 MB photo costs a stat, not a re-read. Raises OSError when the file cannot be
    read or is not a regular file (a FIFO, a device, a folder).
    """
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):  # reading a FIFO would block for ever
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    memo_key = (os.path.abspath(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    with _memo_lock:
        known = _memo.get(memo_key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _memo_lock:
        if len(_memo) > 4096:
            _memo.clear()
        _memo[memo_key] = value
    return value


def bytes_hash(data: bytes) -> str:
    """SHA-256 of in-memory bytes, same format as :func:`content_hash`."""
    return hashlib.sha256(data).hexdigest()
