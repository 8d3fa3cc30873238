"""Edits persist in the app (issue 12, items 2, 4, 7 and 20): saved while the user keeps
editing, on leaving the app, past a damaged or newer sidecar (told, kept aside, never
overwritten), beside another program's edits, and the case list keeps its figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from lesionviewer.app.views.case_list import GED, MALIGNANCY
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import CaseSidecar, load_sidecar, save_sidecar, sidecar_path_for
from lesionviewer.io.sidecar_record import decode

pytestmark = pytest.mark.gui


def _dot(editor, x: int, y: int) -> None:
    """One brush (or eraser) stroke that flips the pixel at (x, y): always a change."""
    stroke = editor.begin_stroke(2.0, not editor.mask[y, x])
    stroke.add_point(x, y)
    editor.end_stroke(stroke)


def _open(window, path, result_of):
    window.open_paths([path])
    return result_of(window)


def test_a_user_who_never_pauses_is_saved_within_2_s(make_window, case_folder, result_of,
                                                     qtbot):
    window = make_window(background=False)
    cur = _open(window, case_folder / "ISIC_0000068.jpg", result_of)
    saves = []
    window.session.autosaver.saved.connect(lambda *args: saves.append(time.monotonic()))
    first = time.monotonic()
    for k in range(12):  # a stroke every 0.25 s for 3 s: never a pause of 0.8 s
        _dot(cur.editor, 20 + 10 * k, 40)
        qtbot.wait(250)
    assert saves, "no save while the user kept editing"
    assert saves[0] - first < 2.0
    on_disk = load_sidecar(case_folder / "ISIC_0000068.jpg").edited_mask
    assert on_disk[40, 20] == cur.editor.mask[40, 20]  # the first stroke is on disk


def test_leaving_the_app_or_the_case_saves_at_once(make_window, case_folder, result_of, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder])
    cur = result_of(window)
    session = window.session
    _dot(cur.editor, 30, 30)
    assert cur.case.unsaved and cur.case.pending is None  # the timer has not fired yet
    QGuiApplication.instance().applicationStateChanged.emit(Qt.ApplicationState.ApplicationInactive)
    assert cur.case.pending is not None  # handed to the saver at once, not a second later
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)

    _dot(cur.editor, 40, 30)
    with qtbot.waitSignal(session.autosaver.saved, timeout=5_000):
        window.actions.next_case.trigger()
    assert load_sidecar(cur.case.path).edited_mask[30, 40] == cur.editor.mask[30, 40]


def _truncate(photo):
    path = sidecar_path_for(photo)
    path.write_bytes(path.read_bytes()[:200])


def _alter_format_1_mask(photo):
    """A lesionviewer 0.1 pair whose mask PNG was replaced by another picture."""
    from lesionviewer.io.export import encode_png
    from lesionviewer.io.hashing import bytes_hash

    record = json.loads(sidecar_path_for(photo).read_text())
    mask_name = photo.name + ".lesionviewer-mask.png"
    png = encode_png(np.zeros((192, 256), np.uint8))
    record.update(format_version=1, mask={"file_name": mask_name, "sha256": bytes_hash(png),
                                          "height": 192, "width": 256})
    sidecar_path_for(photo).write_text(json.dumps(record))
    photo.with_name(mask_name).write_bytes(encode_png(np.full((192, 256), 255, np.uint8)))


@pytest.mark.parametrize("damage", [_truncate, _alter_format_1_mask])
def test_a_damaged_sidecar_is_reported_kept_aside_and_never_overwritten(
        make_window, case_folder, result_of, qtbot, damage):
    photo = case_folder / "ISIC_0000068.jpg"
    mask = np.zeros((192, 256), bool)
    mask[50:90, 60:120] = True
    save_sidecar(CaseSidecar(photo.name, content_hash(photo), edited_mask=mask), photo)
    damage(photo)
    damaged_bytes = sidecar_path_for(photo).read_bytes()

    window = make_window(background=False)
    cur = _open(window, photo, result_of)
    qtbot.waitUntil(lambda: "could not be read" in window.message_bar.message(), timeout=5_000)
    [kept] = case_folder.glob("ISIC_0000068.jpg.lesionviewer.json.damaged-*")
    text = window.message_bar.message()
    assert "ISIC_0000068.jpg" in text and kept.name in text and "\n" not in text
    assert kept.read_bytes() == damaged_bytes

    _dot(cur.editor, 10, 10)  # the next edit is saved, and the damaged file stays as it was
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)
    assert kept.read_bytes() == damaged_bytes
    assert load_sidecar(photo).edited_mask[10, 10] == cur.editor.mask[10, 10]


def test_a_sidecar_from_a_newer_lesionviewer_is_refused_and_never_overwritten(
        make_window, case_folder, result_of, qtbot):
    photo = case_folder / "ISIC_0000068.jpg"
    save_sidecar(CaseSidecar(photo.name, content_hash(photo)), photo)
    record = json.loads(sidecar_path_for(photo).read_text())
    record.update(format_version=7, app_version="3.1.0")
    sidecar_path_for(photo).write_text(json.dumps(record))
    newer = sidecar_path_for(photo).read_bytes()

    window = make_window(background=False)
    cur = _open(window, photo, result_of)
    qtbot.waitUntil(lambda: "made by a newer lesionviewer" in window.message_bar.message(),
                    timeout=5_000)
    _dot(cur.editor, 10, 10)
    qtbot.waitUntil(lambda: "saved beside them" in window.message_bar.message(), timeout=5_000)
    assert sidecar_path_for(photo).read_bytes() == newer
    [copy] = case_folder.glob("ISIC_0000068.jpg.lesionviewer-conflict-*.json")
    assert copy.name in window.message_bar.message()


OTHER_PROGRAM = """
import sys
import numpy as np
from lesionviewer.io import presence
from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import CaseSidecar, save_sidecar
photo = sys.argv[1]
presence.claim(photo, "other")  # it opens the case...
print("open", flush=True)
sys.stdin.readline()
mask = np.zeros((192, 256), bool)
mask[95:106, 95:106] = True  # ...and saves its own edits
save_sidecar(CaseSidecar("ISIC_0000068.jpg", content_hash(photo), edited_mask=mask), photo)
print("saved", flush=True)
sys.stdin.readline()
"""


def test_two_programs_on_one_case_are_told_and_keep_both_edits(
        make_window, case_folder, result_of, qtbot):
    photo = case_folder / "ISIC_0000068.jpg"
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROGRAM, str(photo)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "open"
        window = make_window(background=False)
        cur = _open(window, photo, result_of)
        qtbot.waitUntil(lambda: "also open in another lesionviewer" in
                        window.message_bar.message(), timeout=5_000)  # told before editing
        assert f"pid {other.pid}" in window.message_bar.message()

        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "saved"
        _dot(cur.editor, 10, 10)  # made without the other's edits in view
        qtbot.waitUntil(lambda: "was not saved over" in window.message_bar.message(),
                        timeout=5_000)
        assert f"another lesionviewer (pid {other.pid}" in window.message_bar.message()
        assert load_sidecar(photo).edited_mask[100, 100]  # the other's edits stay in place
        [copy] = case_folder.glob("ISIC_0000068.jpg.lesionviewer-conflict-*.json")
        assert copy.name in window.message_bar.message()
        assert decode(copy, copy.read_bytes()).edited_mask[10, 10] == cur.editor.mask[10, 10]

        _dot(cur.editor, 30, 10)  # later saves keep going to the copy
        qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)
        assert decode(copy, copy.read_bytes()).edited_mask[10, 30] == cur.editor.mask[10, 30]
        assert load_sidecar(photo).edited_mask[100, 100] and not \
            load_sidecar(photo).edited_mask[10, 30]
    finally:
        other.kill()
        other.wait()


def test_edited_cases_keep_their_figures_in_the_list_after_a_restart(
        make_window, case_folder, result_of, qtbot):
    window = make_window(background=False)
    window.open_paths([case_folder])
    result_of(window)
    second = window.session.cases.cases[1]
    window.case_list.select_case(second)
    qtbot.waitUntil(lambda: window.session.current.case is second, timeout=5_000)
    cur = result_of(window)
    ged, malignancy = second.ged, second.malignancy_probability
    assert ged is not None and malignancy is not None
    _dot(cur.editor, 10, 10)
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)
    window.close()

    again = make_window(background=True)
    again.open_paths([case_folder])
    result_of(again)  # the first case is on screen; the edited one is not analysed again
    model = again.session.cases
    case = model.cases[1]
    qtbot.waitUntil(lambda: case.thumbnail is not None, timeout=10_000)
    assert case.status.value == "edited"
    assert case.ged == pytest.approx(ged) and case.malignancy_probability == pytest.approx(
        malignancy)
    assert model.data(model.index(1, GED)) == f"{ged:.3f}"
    assert model.data(model.index(1, MALIGNANCY)) not in ("", None)


def test_a_new_result_never_replaces_edits_without_asking(
        make_window, case_folder, result_of, qtbot):
    window = make_window(background=False)
    cur = _open(window, case_folder / "ISIC_0000068.jpg", result_of)
    _dot(cur.editor, 10, 10)
    edited = cur.editor.mask.copy()
    with qtbot.waitSignal(window.session.result_ready, timeout=30_000):
        window.analyse_current()  # Analysis > Analyse again (e.g. after changing settings)
    assert np.array_equal(cur.editor.mask, edited)
    assert "your edits are kept" in window.message_bar.message()
    window.message_bar._buttons[0].click()  # the user asks: "Replace my edits ..."
    assert not np.array_equal(cur.editor.mask, edited)
    window.actions.undo.trigger()  # and even that can be undone
    assert np.array_equal(cur.editor.mask, edited)


def test_saved_edits_that_do_not_fit_the_photo_are_never_saved_over(
        make_window, case_folder, result_of, qtbot, monkeypatch):
    import lesionviewer.io.sidecar as sidecar_module

    photo = case_folder / "ISIC_0000068.jpg"
    rotated = np.zeros((256, 192), bool)  # e.g. saved by a version that turned the photo
    rotated[:50] = True
    with monkeypatch.context() as earlier_run:
        earlier_run.setattr(sidecar_module, "RUN_ID", "an earlier run")
        save_sidecar(CaseSidecar(photo.name, content_hash(photo), edited_mask=rotated), photo)
    before = sidecar_path_for(photo).read_bytes()
    window = make_window(background=False)
    cur = _open(window, photo, result_of)
    qtbot.waitUntil(lambda: "not shown and are kept" in window.message_bar.message(),
                    timeout=5_000)
    _dot(cur.editor, 10, 10)
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=5_000)
    assert sidecar_path_for(photo).read_bytes() == before
    assert list(case_folder.glob("ISIC_0000068.jpg.lesionviewer-conflict-*.json"))
