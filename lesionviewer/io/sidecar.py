"""Per-case edit sidecars: the clinician's corrected mask and review state, kept next to the photo.

Next to ``photo.jpg`` lives ``photo.jpg.lesionviewer.json``: one file holding the record and
the edited mask (format: :mod:`lesionviewer.io.sidecar_record`), replaced atomically as a
whole. When the photo's folder cannot be written (a read-only share, a CD, a locked archive)
it goes to a fallback folder (the app uses ``platformdirs.user_data_dir(...)/sidecars``) under
a name made from the photo's absolute path, so the same photo finds it again. The photo
itself is never modified.

What could not be read is never overwritten (labelme's ADR-0006 does the same):

* a damaged sidecar (bad JSON, missing or altered mask) is moved aside as
  ``<name>.damaged-<UTC time>`` and reported as a :class:`SidecarProblem`;
* one whose photo has changed since (its SHA-256 differs) is moved aside as
  ``<name>.photo-changed-<UTC time>``;
* one made by a newer lesionviewer is left alone, and so is one saved by another running
  lesionviewer since this one read it (two programs on one case): the new edits then go to a
  conflict copy, ``<photo>.lesionviewer-conflict-<UTC time>.json``, and :class:`SaveOutcome`
  says so.

Saves hold ``<sidecar>.lock`` (pid and host inside; taken over when its process is gone) while
they check and replace, so two programs cannot both pass the check.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import logging
import os
import re
import uuid
from pathlib import Path

from lesionviewer.io.atomic import HOST, LockBusy, atomic_write_bytes, lock_file
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.naming import fit_name
from lesionviewer.io.sidecar_record import (MASK_SUFFIX, SIDECAR_FORMAT, SIDECAR_FORMAT_VERSION,
                                            SIDECAR_SUFFIX, CaseSidecar, CaseStatus, Damaged,
                                            Newer, decode, encode, mask_path_v1, parse,
                                            save_id_of)

__all__ = ["CaseSidecar", "CaseStatus", "SaveOutcome", "SidecarProblem", "SIDECAR_SUFFIX",
           "MASK_SUFFIX", "SIDECAR_FORMAT", "SIDECAR_FORMAT_VERSION", "CONFLICT_INFIX",
           "sidecar_path_for", "save_sidecar", "write_sidecar_file", "load_sidecar",
           "delete_sidecar", "LockBusy"]

log = logging.getLogger(__name__)
CONFLICT_INFIX = ".lesionviewer-conflict-"
# Photo-name bytes kept in a sidecar's name: 255 leaves ~90 for suffixes, stamps and temp names.
SIDECAR_STEM_BYTES = 160
#: Marks the records this running program wrote: its own saves (autosave, export) never
#: conflict with each other, only with another program's (pids can be reused; this cannot).
RUN_ID = uuid.uuid4().hex
_FALLBACK_PREFIX = re.compile(r"^[0-9a-f]{16}_")


@dataclasses.dataclass(frozen=True)
class SidecarProblem:
    """A sidecar that could not be used. kind: "damaged", "photo_changed" or "newer";
    kept_as: where it was moved (None: left in place, e.g. a newer format)."""

    kind: str
    path: Path
    reason: str
    kept_as: Path | None = None

    def message(self) -> str:
        """One line for the user."""
        photo = _photo_name(self.path)
        kept = f" It is kept as '{self.kept_as.name}'." if self.kept_as else ""
        if self.kind == "newer":
            return (f"The saved edits of '{photo}' were made by a newer lesionviewer "
                    f"({self.reason}): they are not shown and will not be overwritten; "
                    f"edits made here go to a separate copy.")
        if self.kind == "photo_changed":
            return (f"'{photo}' has changed since its edits were saved, so they no longer fit "
                    f"it and are not shown.{kept}")
        left = kept or " It is left in place and will not be overwritten."
        return (f"The saved edits of '{photo}' could not be read ({self.reason}); the photo "
                f"opens without them.{left}")


@dataclasses.dataclass
class SaveOutcome:
    """What :func:`save_sidecar` did.

    path: the file now holding the edits. save_id: its id (also set on the sidecar).
    problems: files moved aside before writing (damaged, or for a changed photo).
    conflict: None when saved in place; else why they went to a conflict copy at ``path``.
    """

    path: Path
    save_id: str
    problems: list[SidecarProblem] = dataclasses.field(default_factory=list)
    conflict: str | None = None


class _Refused(Exception):
    """The sidecar in place must not be overwritten; ``reason`` says why (one clause)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sidecar_path_for(image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None) -> Path:
    """Where the sidecar JSON for ``image_path`` lives: next to the photo, or, given
    ``fallback_dir``, the keyed name inside it (see the module text)."""
    image_path = Path(image_path)
    if fallback_dir is None:
        # A photo name near the 255-byte limit would leave no room for the suffix, the
        # temporary name of the atomic write or a .damaged-/conflict- stamp: shorten it with
        # a hash (the same name always maps to the same sidecar).
        return image_path.with_name(fit_name(image_path.name, SIDECAR_STEM_BYTES) + SIDECAR_SUFFIX)
    return Path(fallback_dir) / (_fallback_key(image_path) + SIDECAR_SUFFIX)


def save_sidecar(
    sidecar: CaseSidecar, image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None
) -> SaveOutcome:
    """Write ``sidecar`` next to the photo, or into ``fallback_dir`` when the photo's folder
    refuses the write, as one atomic file replacement.

    Fills in ``saved_at``, ``app_version``, ``writer`` and a new ``save_id``. A damaged sidecar
    in the way is moved aside first. When the one in place must be kept (a newer format, or a
    save by another program that ``sidecar.replaces`` does not list), the edits go to a
    conflict copy beside it instead and ``SaveOutcome.conflict`` says why. Raises OSError
    when nothing could be written (LockBusy when another live program holds the lock).
    """
    image_path = Path(image_path)
    _stamp(sidecar)
    places = [sidecar_path_for(image_path)]
    if fallback_dir is not None:
        places.append(sidecar_path_for(image_path, fallback_dir))
    for n, json_path in enumerate(places):
        try:
            if n:
                json_path.parent.mkdir(parents=True, exist_ok=True)
            outcome = _save_at(sidecar, json_path)
        except _Refused as refused:
            return _save_conflict_copy(sidecar, image_path, places[n:], refused.reason)
        except LockBusy:
            raise
        except OSError as exc:
            if n + 1 == len(places):
                raise
            log.info("cannot write next to %s (%s); using %s", image_path.name, exc, fallback_dir)
            continue
        if sidecar.replaces is not None:  # saving this object again replaces what it wrote
            seen = tuple(dict.fromkeys((*sidecar.replaces, outcome.save_id)))
            # what was read (at most one per place) and the latest own save
            sidecar.replaces = seen if len(seen) <= 3 else seen[:2] + seen[-1:]
        return outcome
    raise AssertionError("unreachable")


def write_sidecar_file(sidecar: CaseSidecar, json_path: str | os.PathLike) -> Path:
    """Write ``sidecar`` to exactly ``json_path`` (atomically, no checks): for a conflict copy
    this program already owns. Fills in the same fields as :func:`save_sidecar`."""
    json_path = Path(json_path)
    _stamp(sidecar)
    atomic_write_bytes(json_path, encode(sidecar))
    return json_path


def load_sidecar(
    image_path: str | os.PathLike,
    fallback_dir: str | os.PathLike | None = None,
    image_hash: str | None = None,
    problems: list[SidecarProblem] | None = None,
) -> CaseSidecar | None:
    """The newest valid sidecar for the photo (next to it or in ``fallback_dir``), or None.

    A damaged sidecar, or one whose photo has changed, is moved aside; one made by a newer
    lesionviewer is left in place. Each is logged and, given ``problems``, appended to it.
    The result's ``replaces`` lists the save ids of every valid sidecar found, so saving it
    back overwrites only what was seen. Pass ``image_hash`` when already known.
    """
    image_path = Path(image_path)
    candidates = [sidecar_path_for(image_path)]
    if fallback_dir is not None:
        candidates.append(sidecar_path_for(image_path, fallback_dir))
    found: list[CaseSidecar] = []
    problems = [] if problems is None else problems
    for json_path in candidates:
        try:
            data, seen = _read(json_path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot read %s: %s", json_path, exc)
            continue
        if image_hash is None:
            try:
                image_hash = content_hash(image_path)
            except OSError as exc:
                log.warning("cannot read %s to check its sidecar: %s", image_path, exc)
                return None
        problem = None
        try:
            sidecar = decode(json_path, data)
            if sidecar.content_hash == image_hash:
                found.append(sidecar)
                continue
            problem = _keep_aside(json_path, seen, "photo_changed", "the photo has changed")
        except Newer as exc:
            problem = SidecarProblem("newer", json_path, str(exc))
        except Damaged as exc:
            problem = _keep_aside(json_path, seen, "damaged", str(exc))
        if problem is not None:
            log.warning("ignoring sidecar %s: %s (%s; kept as %s)", json_path, problem.kind,
                        problem.reason, problem.kept_as)
            problems.append(problem)
    if not found:
        return None
    newest = max(found, key=lambda s: s.saved_at)
    newest.replaces = tuple(s.save_id for s in found)
    return newest


def delete_sidecar(image_path: str | os.PathLike, fallback_dir: str | os.PathLike | None = None) -> None:
    """Remove the photo's sidecar files wherever they are (e.g. "discard my edits")."""
    image_path = Path(image_path)
    places = [sidecar_path_for(image_path)]
    if fallback_dir is not None:
        places.append(sidecar_path_for(image_path, fallback_dir))
    for json_path in places:
        for path in (json_path, mask_path_v1(json_path)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


# --- internals ------------------------------------------------------------------------------
def _stamp(sidecar: CaseSidecar) -> None:
    from lesionviewer import __version__

    sidecar.saved_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
    sidecar.app_version = __version__
    sidecar.writer = {"pid": os.getpid(), "host": HOST, "run": RUN_ID}
    sidecar.save_id = uuid.uuid4().hex


def _fallback_key(image_path: Path) -> str:
    absolute = os.path.normcase(os.path.abspath(image_path))
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{digest}_{image_path.name}"


def _photo_name(json_path: Path) -> str:
    name = json_path.name
    if name.endswith(SIDECAR_SUFFIX):
        name = name[: -len(SIDECAR_SUFFIX)]
    return _FALLBACK_PREFIX.sub("", name, count=1)  # the fallback folder's keyed names


def _read(json_path: Path) -> tuple[bytes, tuple]:
    with open(json_path, "rb") as f:
        st = os.fstat(f.fileno())
        return f.read(), (st.st_ino, st.st_size, st.st_mtime_ns)


def _lock_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.name + ".lock")


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _free_name(path: Path) -> Path:
    """``path``, or ``path`` with -2, -3, ... added until nothing has that name."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _move_aside(json_path: Path, label: str) -> Path:
    """Rename the sidecar (and a format-1 mask file beside it) to ``<name>.<label>-<time>``."""
    stamp = _utc_stamp()
    target = _free_name(json_path.with_name(f"{json_path.name}.{label}-{stamp}"))
    os.replace(json_path, target)
    mask = mask_path_v1(json_path)
    if mask.exists():
        try:
            os.replace(mask, _free_name(mask.with_name(f"{mask.name}.{label}-{stamp}")))
        except OSError as exc:
            log.warning("could not move %s aside: %s", mask, exc)
    return target


def _keep_aside(json_path: Path, seen: tuple, kind: str, reason: str) -> SidecarProblem | None:
    """Move a sidecar that cannot be used out of the way, if it is still the file that was
    read (a save may have replaced it meanwhile). None when it has gone or changed."""
    label = "damaged" if kind == "damaged" else "photo-changed"
    try:
        with lock_file(_lock_path(json_path), timeout_s=2.0):
            st = os.stat(json_path)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != seen:
                return None
            kept = _move_aside(json_path, label)
    except FileNotFoundError:
        return None  # another reader moved it first and reports it
    except OSError as exc:  # a read-only folder: it stays, and saves go elsewhere
        log.warning("could not move %s aside: %s", json_path, exc)
        kept = None
    return SidecarProblem(kind, json_path, reason, kept)


def _save_at(sidecar: CaseSidecar, json_path: Path) -> SaveOutcome:
    """Check what is at ``json_path`` and replace it, holding its lock. Raises _Refused when
    it must be kept, OSError when the folder cannot be written."""
    problems: list[SidecarProblem] = []
    payload = encode(sidecar)  # before taking the lock: a 50 MP mask takes a while to encode
    with lock_file(_lock_path(json_path)):
        try:
            data, seen = _read(json_path)
        except FileNotFoundError:
            data = None
        if data is not None:
            problem = _check_replaceable(sidecar, json_path, data)
            if problem is not None:
                problems.append(SidecarProblem(problem[0], json_path, problem[1],
                                               _move_aside(json_path, problem[2])))
        atomic_write_bytes(json_path, payload)
    stale_mask = mask_path_v1(json_path)  # format 1 leftovers: the new file holds the mask
    if stale_mask.exists():
        try:
            stale_mask.unlink()
        except OSError as exc:
            log.warning("could not remove %s: %s", stale_mask, exc)
    for p in problems:
        log.warning("moved %s aside to %s before saving: %s", p.path, p.kept_as, p.reason)
    return SaveOutcome(json_path, sidecar.save_id, problems)


def _check_replaceable(sidecar: CaseSidecar, json_path: Path, data: bytes):
    """None when the file in place may be replaced; (kind, reason, label) when it must be
    moved aside first. Raises _Refused when it must stay and this save go elsewhere."""
    try:
        record = parse(json_path, data)
    except Newer as exc:
        raise _Refused(f"the edits there were made by a newer lesionviewer ({exc})") from None
    except Damaged as exc:
        return "damaged", str(exc), "damaged"
    on_disk = save_id_of(record)
    if sidecar.replaces is not None and on_disk in sidecar.replaces:
        return None  # what this writer has seen: overwrite
    writer = record.get("writer")
    if isinstance(writer, dict) and writer.get("run") == RUN_ID:
        return None  # an earlier save of this very program: nothing of anyone else's in it
    try:
        existing = decode(json_path, data)
    except Damaged as exc:
        return "damaged", str(exc), "damaged"
    if existing.content_hash != sidecar.content_hash:
        return "photo_changed", "the photo has changed", "photo-changed"
    if sidecar.replaces is None:
        return None
    writer = existing.writer
    by = (f"pid {writer.get('pid')} on {writer.get('host')}" if writer else
          f"lesionviewer {existing.app_version or '?'}")
    raise _Refused(f"another lesionviewer ({by}) saved edits there at "
                   f"{existing.saved_at or 'an unknown time'}")


def _save_conflict_copy(sidecar: CaseSidecar, image_path: Path, places: list[Path],
                        reason: str) -> SaveOutcome:
    last_error: OSError | None = None
    for json_path in places:
        copy = _free_name(json_path.with_name(
            json_path.name[: -len(SIDECAR_SUFFIX)] + f"{CONFLICT_INFIX}{_utc_stamp()}.json"))
        try:
            copy.parent.mkdir(parents=True, exist_ok=True)
            write_sidecar_file(sidecar, copy)
        except OSError as exc:
            last_error = exc
            continue
        log.warning("kept %s and saved the edits of %s to %s: %s", json_path, image_path.name,
                    copy, reason)
        return SaveOutcome(copy, sidecar.save_id, [], reason)
    assert last_error is not None
    raise last_error
