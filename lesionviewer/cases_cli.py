"""`lesionviewer cases`: the case store from the command line.

``cases import PATH...``   photos and folders become cases; ``<photo>.lesionviewer.json``
                           autosaves and ``<id>_analysis.json`` files from ``lesionviewer
                           analyze`` are imported with them; a folder's ``labels.csv`` (the
                           shared data format) gives the cases' labels. Safe to run again.
``cases status``           cases per review state, raters, the store (password hidden).
``cases export --out DIR`` the reviewed cases as a data set (see lesionviewer/store/export.py).
``cases grant NAME ROLE``  make a user a reviewer (may sign off) or an annotator; reviewers only.

``--db URL`` (else ``$LESIONVIEWER_DB``, else the app's setting, else the SQLite file in the
user data folder) and ``--user NAME`` (else the app's user name setting, else the OS login;
a team store records the database login and refuses another name) apply to every sub-command,
before or after its name. Every error is one line on stderr and a non-zero exit status; a URL
is only ever shown with its password replaced by ``***``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from lesionviewer.io.images import ImageLoadError, find_images

EXIT_PROBLEMS = 1  # done, but some inputs could not be used (each named on stderr)
EXIT_FAILED = 2  # nothing done: bad option, store unreachable, permission


def _store_options(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("--db", metavar="URL", default=default,
                   help="store URL: sqlite:///path/cases.sqlite or postgresql://user@host/db?sslmode=... "
                        "(default: $LESIONVIEWER_DB, the app's setting, or the SQLite file in the user data folder)")
    p.add_argument("--user", metavar="NAME", default=default,
                   help="who is recorded on writes (default: the app's user name setting, else the OS login; "
                        "a team store always records your database login)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    _store_options(p, None)
    common = argparse.ArgumentParser(add_help=False)
    _store_options(common, argparse.SUPPRESS)  # also accepted after the sub-command's name
    sub = p.add_subparsers(dest="action", required=True, metavar="{import,status,export,grant}")
    imp = sub.add_parser("import", parents=[common], help="add photos (files or folders) as cases, "
                                                         "with their autosaved edits and analysis JSONs")
    imp.add_argument("paths", nargs="+", help="photos, folders (searched recursively) or *_analysis.json files")
    sub.add_parser("status", parents=[common], help="cases per review state, raters, the store")
    exp = sub.add_parser("export", parents=[common], help="write the cases as a data set (images, consensus "
                                                         "and per-rater masks, labels.csv with review states)")
    exp.add_argument("--out", required=True, help="folder for the data set")
    exp.add_argument("--state", help="only cases in this review state (e.g. signed-off)")
    exp.add_argument("--format", dest="fmt", choices=("isic", "coco"), default="isic",
                     help="isic: ID.jpg + ID_mask.png (default); coco: annotations.json with RLE masks")
    grant = sub.add_parser("grant", parents=[common], help="give a user the reviewer (sign-off) or "
                                                          "annotator role (reviewers only)")
    grant.add_argument("name", help="the user name as recorded on writes")
    grant.add_argument("role", choices=("reviewer", "annotator"))


def app_settings() -> dict:
    """The app's saved settings (``settings.json`` in its config folder, read without Qt):
    its ``db_url`` and ``user_name`` are this command's defaults too. {} when unreadable."""
    from lesionviewer.app.dirs import app_dirs

    try:
        settings = json.loads((app_dirs().config / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def _error(message: str, secret: str | None = None) -> None:
    text = " ".join(str(message).split())
    if secret:  # belt and braces: a driver message could quote it, plain or URL-encoded
        from urllib.parse import quote

        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    print(f"lesionviewer cases: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from lesionviewer.store.url import is_postgresql, normalise, redact, resolve_url

    saved = app_settings()
    url = resolve_url(args.db, saved.get("db_url") if isinstance(saved.get("db_url"), str) else None)
    try:
        secret = normalise(url).password
    except ValueError as exc:
        _error(exc)
        return EXIT_FAILED
    # the app's user name is for one desk; a team store records the database login
    if not args.user and isinstance(saved.get("user_name"), str) and saved["user_name"].strip() \
            and not is_postgresql(url):
        args.user = saved["user_name"].strip()
    try:
        return _run(args, url)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # one line, never a traceback with the URL inside
        message = _describe(exc)
        shown = redact(url)
        _error(message if shown in message else f"{message} (store: {shown})", secret)
        return EXIT_FAILED


def _describe(exc: BaseException) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        first = str(orig or exc).strip().splitlines()
        return f"database error: {first[0] if first else type(exc).__name__}"
    text = str(exc).strip()
    return text or type(exc).__name__


def _run(args: argparse.Namespace, url: str) -> int:
    from lesionviewer.store import CaseStore

    with CaseStore.open(url, user=args.user) as store:
        if args.action == "import":
            return import_paths(store, args.paths)
        if args.action == "status":
            return print_status(store)
        if args.action == "grant":
            from lesionviewer.store.states import Role

            store.grant(args.name, Role(args.role))
            print(f"{args.name.strip()} is now {args.role} in {store.url_for_display} (granted by {store.user})")
            return 0
        return export(store, args)


# -- import -----------------------------------------------------------------------------------

def _collect(paths: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """(photos, analysis JSON files, problems) under ``paths``."""
    photos: list[Path] = []
    analyses: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            photos += [p for p in find_images(path, problems=problems)
                       if not p.stem.lower().endswith("_consensus")]
            analyses += sorted(path.rglob("*_analysis.json"))
        elif path.is_file() and path.name.endswith("_analysis.json"):
            analyses.append(path)
        elif path.is_file():
            photos.append(path)
        else:
            problems.append(f"{raw}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in photos))
    return unique, list(dict.fromkeys(a.resolve() for a in analyses)), problems


def _labels_for(photo: Path, roots: list[Path], tables: dict[Path, dict[str, dict]]) -> dict | None:
    """The photo's row of a ``labels.csv`` in one of the imported folders (keyed by the id the
    shared data format gives it: its path under that folder, without suffix)."""
    for root in roots:
        if root not in tables:
            table = {}
            csv_path = root / "labels.csv"
            if csv_path.is_file():
                with open(csv_path, newline="", encoding="utf-8") as f:
                    table = {row["id"]: row for row in csv.DictReader(f) if row.get("id")}
            tables[root] = table
        try:
            case_id = photo.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            continue
        row = tables[root].get(case_id)
        if row:
            return {k: v for k, v in row.items() if k != "id" and k is not None}
    return None


def import_paths(store, paths: list[str]) -> int:
    photos, analysis_files, problems = _collect(paths)
    roots = [Path(p).resolve() for p in paths if Path(p).is_dir()]
    tables: dict[Path, dict[str, dict]] = {}
    before = sum(store.counts().values())
    by_hash: dict[str, int] = {}
    readable = []
    for photo in photos:
        try:
            _check_photo(photo)
            record = store.add_case(photo, labels=_labels_for(photo, roots, tables))
        except (OSError, ValueError, ImageLoadError) as exc:
            problems.append(f"{photo}: {exc}")
            continue
        readable.append(photo)
        by_hash[record.content_sha256] = record.id
    added = sum(store.counts().values()) - before
    sidecars = _sidecar_summary(store.import_sidecars(readable), problems)
    analysed, skipped = _import_analyses(store, analysis_files, by_hash, problems)
    for message in problems:
        _error(message)
    print(f"{len(by_hash)} photo(s): {added} new case(s), {len(by_hash) - added} already in the store")
    print(f"autosaved edits: {sidecars}")
    print(f"analyses: {analysed} recorded, {skipped} already in the store")
    print(f"store: {store.url_for_display}")
    return EXIT_PROBLEMS if problems else 0


def _check_photo(photo: Path) -> None:
    """Raise ImageLoadError unless the file opens as a photo (its header, not its pixels)."""
    from lesionviewer.io.images import open_image_file

    try:
        with open_image_file(photo):
            pass
    except ImageLoadError:
        raise
    except Exception as exc:  # a truncated or foreign file: one line, never a traceback
        raise ImageLoadError(f"not a photo lesionviewer can open ({exc})") from None


def _sidecar_summary(report, problems: list[str]) -> str:
    problems += [f"{path}: {reason}" for path, reason in report.problems]
    text = f"{len(report.imported)} imported, {len(report.skipped)} already in the store"
    text += f", {len(report.problems)} could not be used" if report.problems else ""
    notes = getattr(report, "notes", [])  # e.g. "marked 'reviewed': a reviewer must sign it off"
    return text + "".join(f"\n  {Path(path).name}: {note}" for path, note in notes)


def _import_analyses(store, files: list[Path], by_hash: dict[str, int], problems: list[str]) -> tuple[int, int]:
    """Record each analysis JSON on the case with the same photo hash; (recorded, already there)."""
    from lesionviewer.store.export import analysis_recorded

    recorded = already = 0
    for path in files:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: not an analysis record ({exc})")
            continue
        digest = summary.get("content_sha256") if isinstance(summary, dict) else None
        case_id = by_hash.get(digest) if digest else None
        if case_id is None and isinstance(digest, str):  # a photo imported earlier
            known = store.case_for_hash(digest)
            case_id = known.id if known else None
        if case_id is None:
            problems.append(f"{path}: its photo (sha256 {str(digest)[:12]}...) is not in the store")
            continue
        if analysis_recorded(store, case_id, summary):
            already += 1
            continue
        store.record_analysis(case_id, summary)
        recorded += 1
    return recorded, already


# -- status and export ------------------------------------------------------------------------

def print_status(store) -> int:
    from lesionviewer.store.states import ReviewState

    counts = store.counts()
    total = sum(counts.values())
    print(f"store: {store.url_for_display}")
    print(f"user: {store.user} ({store.role.value})")
    print(f"cases: {total}")
    width = max(len(s.value) for s in ReviewState)
    for state in ReviewState:
        print(f"  {state.value:<{width}}  {counts.get(state, 0)}")
    from lesionviewer.store.export import rater_counts

    raters = rater_counts(store)
    print(f"raters: {len(raters)}" + (": " + ", ".join(f"{name} ({n} case(s))" for name, n in raters.items())
                                       if raters else ""))
    return 0


def export(store, args: argparse.Namespace) -> int:
    from lesionviewer.store.export import ExportError, export_dataset
    from lesionviewer.store.states import ReviewState

    try:
        state = ReviewState.parse(args.state) if args.state else None
    except ValueError as exc:
        _error(exc)
        return EXIT_FAILED
    try:
        report = export_dataset(store, args.out, state=state, fmt=args.fmt, refuse_empty=True)
    except ExportError as exc:
        _error(exc)
        return EXIT_FAILED
    which = f"in state '{state.value}'" if state else "in any state"
    print(f"{report.cases} case(s) {which} exported to {report.out} ({args.fmt}, {report.files} files); "
          f"raters: {', '.join(report.raters) or 'none'}")
    if report.without_mask:
        print(f"{report.without_mask} case(s) left out: no rater has drawn a mask on them yet")
    return 0
