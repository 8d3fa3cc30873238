"""Writes held while the store's server is away, kept in a journal file until it is back.

When a write raises :class:`StoreUnavailable`, the app hands it to a :class:`WriteQueue`
instead; the queue appends it to ``<user data folder>/store-journal.json`` (replaced
atomically as a whole, under a lock file, so a crash or a second program never leaves it
half-written) and the app goes read-only. :meth:`WriteQueue.flush` replays the held writes
in order once the store answers: a mask saved on a version that someone else has since
moved past is stored all the same and reported as a conflict (both kept), never dropped.
Several saves of one case held on the same parent (the app could not learn the first one's
new version id while the server was away) form a line: each replays on the version the one
before it wrote, so only a save made meanwhile elsewhere is a conflict.
A write the store refuses for good (a signed-off case, a missing permission) moves to the
journal's ``refused`` list with the reason, so it is never lost silently either.

Each entry records the store (redacted URL) and the user it was made for; a flush replays
only the entries of that store and user.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from lesionviewer.io.atomic import atomic_write_bytes, lock_file, to_json_ready
from lesionviewer.store.masks import decode_mask, encode_mask
from lesionviewer.store.records import SaveResult
from lesionviewer.store.states import PermissionDenied, ReviewError, ReviewState, StoreUnavailable
from lesionviewer.store.url import data_dir

log = logging.getLogger(__name__)
JOURNAL_NAME = "store-journal.json"
JOURNAL_FORMAT = "lesionviewer-store-journal"
OPERATIONS = ("save_mask", "set_state", "record_analysis")


@dataclasses.dataclass
class FlushReport:
    """What :meth:`WriteQueue.flush` did. written: entries now in the store; conflicts: the
    saves that were stale (both versions kept); refused: (entry, reason) kept in the journal's
    refused list; remaining: entries still held (the store went away again mid-flush);
    version_ids: {journal entry id: the mask version id its save wrote}, in replay order."""

    written: list[dict] = dataclasses.field(default_factory=list)
    conflicts: list[SaveResult] = dataclasses.field(default_factory=list)
    refused: list[tuple[dict, str]] = dataclasses.field(default_factory=list)
    remaining: int = 0
    version_ids: dict[str, int] = dataclasses.field(default_factory=dict)

    def newest_versions(self) -> dict[int, int]:
        """{case id: the version id of the last save of the case this flush wrote}: the
        parent of the user's next save of it."""
        cases = {e["id"]: e["args"]["case_id"] for e in self.written if e["op"] == "save_mask"}
        return {cases[entry_id]: version for entry_id, version in self.version_ids.items()}


class WriteQueue:
    """The journal of held writes at ``path`` (default: the user data folder)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else data_dir() / JOURNAL_NAME

    # --- holding ------------------------------------------------------------------------
    def save_mask(self, store, case_id: int, mask: np.ndarray, parent_id: int | None) -> None:
        """Hold a mask save (HxW bool) for ``store``'s user."""
        mask = np.asarray(mask, dtype=bool)
        self._hold(store, "save_mask", {
            "case_id": case_id, "parent_id": parent_id, "shape": list(mask.shape),
            "mask_png": base64.b64encode(encode_mask(mask)).decode("ascii")})

    def set_state(self, store, case_id: int, state: ReviewState, comment: str | None = None) -> None:
        self._hold(store, "set_state", {"case_id": case_id,
                                        "state": ReviewState.parse(state).value,
                                        "comment": comment})

    def record_analysis(self, store, case_id: int, summary: dict) -> None:
        self._hold(store, "record_analysis", {"case_id": case_id, "summary": summary})

    def submit(self, store, operation: str, **arguments) -> Any:
        """Do the write now when nothing is held for this store and user and it is reachable
        (returns the store's answer); otherwise hold it (returns None), so writes keep their
        order."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown write {operation!r}")
        if not self.pending(store):
            try:
                return getattr(store, operation)(**arguments)
            except StoreUnavailable:
                log.warning("store %s unreachable: holding the %s", store.url_for_display, operation)
        getattr(self, operation)(store, **arguments)
        return None

    # --- reading ------------------------------------------------------------------------
    def pending(self, store=None) -> list[dict]:
        """Held entries (of ``store``'s URL and user, given one), oldest first."""
        entries = self._read()["pending"]
        return entries if store is None else [e for e in entries if _belongs(e, store)]

    def refused(self) -> list[dict]:
        """Entries the store refused for good, each with its "reason"."""
        return self._read()["refused"]

    def __len__(self) -> int:
        return len(self.pending())

    # --- replaying ----------------------------------------------------------------------
    def flush(self, store) -> FlushReport:
        """Replay ``store``'s held writes in order; stops (keeping the rest) when the store
        goes away again. Conflicts are returned, never dropped."""
        report = FlushReport()
        with lock_file(self._lock_path(), timeout_s=10.0):
            journal = self._read()
            entries, kept, gone = journal["pending"], [], False
            for n, entry in enumerate(entries):
                if gone or not _belongs(entry, store):
                    kept.append(entry)
                    continue
                try:
                    result = _replay(store, entry)
                except StoreUnavailable:
                    gone = True
                    kept.append(entry)
                    continue
                except (ReviewError, PermissionDenied, ValueError, KeyError) as exc:
                    reason = str(exc.args[0] if isinstance(exc, KeyError) else exc)
                    journal["refused"].append({**entry, "reason": reason})
                    report.refused.append((entry, reason))
                    log.warning("held %s of case %s refused: %s", entry["op"],
                                entry["args"].get("case_id"), reason)
                else:
                    report.written.append(entry)
                    if isinstance(result, SaveResult):
                        report.version_ids[entry["id"]] = result.version.id
                        _chain(entry, result.version.id, entries[n + 1:])
                        if result.conflict is not None:
                            report.conflicts.append(result)
                # off the journal at once: a crash now replays at most the write in flight
                self._write({"pending": kept + entries[n + 1:], "refused": journal["refused"]})
            report.remaining = sum(1 for e in kept if _belongs(e, store))
        return report

    # --- the journal file ---------------------------------------------------------------
    def _hold(self, store, operation: str, arguments: dict) -> None:
        entry = {"id": uuid.uuid4().hex, "op": operation, "args": to_json_ready(arguments),
                 "store": store.url_for_display, "user": store.user,
                 "held_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")}
        with lock_file(self._lock_path(), timeout_s=10.0):
            journal = self._read()
            journal["pending"].append(entry)
            self._write(journal)
        log.info("held %s of case %s for %s", operation, arguments.get("case_id"),
                 store.url_for_display)

    def _read(self) -> dict:
        try:
            journal = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"pending": [], "refused": []}
        except (OSError, ValueError) as exc:
            raise OSError(f"the write journal {self.path} cannot be read ({exc}); it is left "
                          f"as it is") from None
        if not isinstance(journal, dict) or journal.get("format") != JOURNAL_FORMAT:
            raise OSError(f"{self.path} is not lesionviewer's write journal; it is left as it is")
        return {"pending": list(journal.get("pending") or []),
                "refused": list(journal.get("refused") or [])}

    def _write(self, journal: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"format": JOURNAL_FORMAT, "format_version": 1, **journal}
        atomic_write_bytes(self.path, (json.dumps(record, indent=1) + "\n").encode("utf-8"))

    def _lock_path(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.with_name(self.path.name + ".lock")


def _belongs(entry: dict, store) -> bool:
    return entry.get("store") == store.url_for_display and entry.get("user") == store.user


def _chain(saved: dict, version_id: int, later: list[dict]) -> None:
    """The later held saves of the same case, store and user made on the parent ``saved``
    was made on now follow the version it wrote (kept in the journal with them, so a flush
    cut short by the server going away again keeps the line)."""
    case_id, parent_id = saved["args"]["case_id"], saved["args"]["parent_id"]
    for entry in later:
        args = entry["args"]
        if entry["op"] == "save_mask" and args["case_id"] == case_id and \
                args["parent_id"] == parent_id and entry.get("store") == saved.get("store") \
                and entry.get("user") == saved.get("user"):
            args["parent_id"] = version_id


def _replay(store, entry: dict):
    args = entry["args"]
    held_at = _dt.datetime.fromisoformat(entry["held_at"])
    if entry["op"] == "save_mask":
        mask = decode_mask(base64.b64decode(args["mask_png"]), tuple(args["shape"]))
        return store.save_mask(args["case_id"], mask, args["parent_id"], source="offline",
                               created_at=held_at)
    if entry["op"] == "set_state":
        return store.set_state(args["case_id"], ReviewState.parse(args["state"]), args["comment"])
    if entry["op"] == "record_analysis":
        return store.record_analysis(args["case_id"], args["summary"])
    raise ValueError(f"unknown held write {entry['op']!r}")
