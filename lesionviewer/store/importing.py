"""Taking lesionviewer's sidecar autosaves (``<photo>.lesionviewer.json`` and the conflict
copies beside it) into the case store, losing nothing and importing nothing twice.

Each sidecar becomes, in one transaction: the photo's case (added if new), its analysis
summary as an analysis, its edited mask as a mask version of the importing user (created at
the sidecar's ``saved_at``, source "sidecar"), its status as the review state where the
workflow and the user's role allow, and an audit entry holding the whole record but the mask
(roi, threshold, edit summary, writer, app version, save id, file). A row in ``imports``
keyed by the photo's hash and the sidecar's save id makes a second import skip it. The
sidecar files themselves are only read, never moved or changed.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from lesionviewer.io.hashing import content_hash
from lesionviewer.io.naming import fit_name
from lesionviewer.io.sidecar import CONFLICT_INFIX, SIDECAR_STEM_BYTES, sidecar_path_for
from lesionviewer.io.sidecar_record import SIDECAR_SUFFIX, CaseSidecar, Damaged, Newer, decode
from lesionviewer.store import db, schema as t
from lesionviewer.store.masks import encode_mask
from lesionviewer.store.photos import photo_facts
from lesionviewer.store.records import ImportReport
from lesionviewer.store.states import (ALLOWED, PermissionDenied, ReviewError, ReviewState, Role)
from lesionviewer.store.url import data_dir

log = logging.getLogger(__name__)
SOURCE = "sidecar"
FALLBACK_FOLDER = "sidecars"  # under the user data folder, as the app's session keeps them


def sidecar_files(paths: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """(sidecar file, photo or None) for each path: a folder (searched recursively), a
    sidecar or conflict-copy file, or a photo (its sidecar and conflict copies)."""
    found: dict[Path, Path | None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            for candidate in sorted(path.rglob("*.json")):
                if _is_sidecar_name(candidate.name):
                    found.setdefault(candidate, None)
        elif _is_sidecar_name(path.name):
            found.setdefault(path, None)
        else:
            own = sidecar_path_for(path)
            # the app's autosave for a photo whose folder refused the write (lesionviewer.io.sidecar)
            fallback = sidecar_path_for(path, data_dir() / FALLBACK_FOLDER)
            stem = fit_name(path.name, SIDECAR_STEM_BYTES)
            for candidate in [own, fallback,
                              *sorted(path.parent.glob(f"{_glob_escape(stem)}{CONFLICT_INFIX}*.json"))]:
                if candidate.is_file():
                    found[candidate] = path
    return list(found.items())


def _is_sidecar_name(name: str) -> bool:
    return name.endswith(SIDECAR_SUFFIX) or (CONFLICT_INFIX in name and name.endswith(".json"))


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def import_sidecars(store, paths: Iterable[Path]) -> ImportReport:
    """Import the sidecars under ``paths`` into ``store`` (see the module text)."""
    report = ImportReport()
    readable: list[tuple[Path, Path, CaseSidecar]] = []
    for json_path, photo in sidecar_files(paths):
        try:
            sidecar = decode(json_path, json_path.read_bytes())
        except (Damaged, Newer) as exc:
            report.problems.append((json_path, str(exc)))
            continue
        except OSError as exc:
            report.problems.append((json_path, f"cannot be read ({exc.strerror or exc})"))
            continue
        photo = photo or json_path.with_name(sidecar.image_file_name)
        try:
            if content_hash(photo) != sidecar.content_hash:
                report.problems.append((json_path, f"{photo.name} has changed since these edits"))
                continue
        except OSError:
            report.problems.append((json_path, f"its photo {sidecar.image_file_name} is not beside it"))
            continue
        readable.append((json_path, photo, sidecar))
    readable.sort(key=lambda item: item[2].saved_at)  # versions in the order they were made
    for json_path, photo, sidecar in readable:
        try:
            outcome = _import_one(store, json_path, photo, sidecar)
        except (ReviewError, PermissionDenied, ValueError) as exc:
            report.problems.append((json_path, str(exc)))
            continue
        except OSError as exc:
            report.problems.append((json_path, f"its photo cannot be read ({exc.strerror or exc})"))
            continue
        case_id, note = outcome
        (report.imported if note != "skipped" else report.skipped).append(json_path)
        if case_id not in report.case_ids:
            report.case_ids.append(case_id)
        if note not in (None, "skipped"):
            report.notes.append((json_path, note))
    return report


def _import_one(store, json_path: Path, photo: Path, sidecar: CaseSidecar):
    """(case id, note) after importing one sidecar; note "skipped" when already imported."""
    facts = photo_facts(photo)
    key = f"sidecar:{sidecar.content_hash}:{sidecar.save_id}"[:200]
    png = None if sidecar.edited_mask is None else encode_mask(sidecar.edited_mask)
    for attempt in range(2):
        try:
            with db.writing(store._engine) as conn:
                return _import_in(store, conn, key, facts, png, json_path, sidecar)
        except IntegrityError:  # another program added the photo or imported it meanwhile
            if attempt:
                raise
    raise AssertionError("unreachable")


def _import_in(store, conn, key: str, facts: dict, png: bytes | None, json_path: Path,
               sidecar: CaseSidecar):
    known = conn.execute(select(t.imports.c.case_id).where(t.imports.c.key == key)).scalar()
    if known is not None:
        return known, "skipped"
    case = store._add_case(conn, facts, None)
    if sidecar.analysis_summary or sidecar.model_id:
        store._record_analysis(conn, case.id, {"model_id": sidecar.model_id,
                                               **(sidecar.analysis_summary or {})})
    version = None
    if png is not None:
        mv = t.mask_versions.c
        parent = conn.execute(select(func.max(mv.id)).where(
            mv.case_id == case.id, mv.author == store.user)).scalar_one()
        version = store._save_mask(conn, case.id, sidecar.edited_mask, png, parent, SOURCE,
                                   _saved_at(sidecar.saved_at)).version.id
    note = _apply_status(store, conn, case.id, sidecar.status, json_path)
    conn.execute(insert(t.imports).values(key=key, case_id=case.id, at=_now(), user=store.user))
    store._audit(conn, "import sidecar", case.id, {
        "file": os.fspath(json_path), "mask_version": version,
        "record": {k: v for k, v in vars(sidecar).items() if k != "edited_mask"}})
    return case.id, note


def _apply_status(store, conn, case_id: int, status: str, json_path: Path) -> str | None:
    """Carry the sidecar's status ("in progress", "reviewed") into the review state where
    allowed; a note when it could not be (e.g. "reviewed" imported by an annotator)."""
    state = ReviewState(store._case(conn, case_id).state)
    if status == "reviewed":
        target, comment = ReviewState.SIGNED_OFF, f"imported as reviewed from {json_path.name}"
    elif status == "in progress" and state in (ReviewState.NEW, ReviewState.ANALYSED):
        target, comment = ReviewState.IN_REVIEW, None
    else:
        return None
    if state is target:
        return None
    if target not in ALLOWED[state]:
        return f"marked '{status}' but the case is '{state.value}': state left as it is"
    if target is ReviewState.SIGNED_OFF and store.role is not Role.REVIEWER:
        return "marked 'reviewed': a reviewer must sign it off (state left as it is)"
    store._set_state(conn, case_id, target, comment)
    return None


def _saved_at(text: str) -> _dt.datetime | None:
    try:
        when = _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)
