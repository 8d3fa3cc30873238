"""Writing the files of one result set together: all of them, or none.

A full disk or a read-only folder half-way through a case must not leave a set that looks
complete (a mask without its maps, maps from an earlier run beside a new mask). Each file goes
to a short hidden temporary name first (flushed to disk); only when every file is written are
they renamed to their real names, the JSON record last.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from lesionviewer.io.atomic import _UMASK, _fsync_folder


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` and flush it to disk (tests make it fail)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


class FileSet:
    """The files of one result set, all written or none.

    :meth:`write` puts each file under a short hidden temporary name in its folder; leaving
    the ``with`` block without an error renames them all to their real names (in the order
    written, so write the JSON record last); an error (a full disk, a read-only folder)
    removes the temporary files and any folder the set created, so no partial set that looks
    complete is left behind, and an earlier complete set under the same names is kept.
    Writing one name twice in a set raises ValueError (nothing is ever overwritten within it).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)
        self._created: list[Path] = []  # folders this set made, deepest last

    def write(self, path: str | os.PathLike, data: bytes) -> Path:
        path = Path(path)
        if any(final == path for _, final in self._pending):
            raise ValueError(f"'{path.name}' would be written twice in one result set")
        self._make_folder(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".lv-", suffix=".tmp", dir=path.parent)
        self._pending.append((Path(tmp), path))
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        return path

    def commit(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)
        for folder in {final.parent for _, final in self._pending}:
            _fsync_folder(folder)
        self._pending.clear()

    def discard(self) -> None:
        for tmp, _ in self._pending:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self._pending.clear()
        for folder in reversed(self._created):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
        self._created.clear()

    def _make_folder(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            if folder.parent == folder:
                break
            folder = folder.parent
        for f in reversed(missing):
            try:
                f.mkdir()
            except FileExistsError:
                continue
            self._created.append(f)

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
