"""A save is atomic as a unit, old sidecars still load, two writers never drop each other's
edits (issue 12, items 3 and 7)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lesionviewer.io import atomic
from lesionviewer.io import sidecar as sidecar_module
from lesionviewer.io.hashing import bytes_hash, content_hash
from lesionviewer.io.sidecar import (CaseSidecar, LockBusy, SidecarProblem, load_sidecar,
                                     save_sidecar, sidecar_path_for)

CHILD = Path(__file__).with_name("sidecar_crash_child.py")


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / "clinic"
    folder.mkdir()
    path = folder / "case.jpg"
    Image.new("RGB", (12, 8), (150, 100, 80)).save(path)
    return path


def _state(photo, name: str) -> CaseSidecar:
    """State "A", "B", "C"...: status = name, mask = the first 2, 3, 4... rows."""
    mask = np.zeros((8, 12), bool)
    mask[: "ABCDEFGH".index(name) + 2, :] = True
    return CaseSidecar(photo.name, content_hash(photo), "m@1", mask, status=name)


def _write_format_1(photo, sidecar: CaseSidecar) -> None:
    """The two files lesionviewer 0.1 wrote: record JSON + mask PNG."""
    from lesionviewer.io.export import encode_png

    png = encode_png(sidecar.edited_mask.astype(np.uint8) * 255)
    mask_name = photo.name + ".lesionviewer-mask.png"
    photo.with_name(mask_name).write_bytes(png)
    record = {"format": "lesionviewer-sidecar", "format_version": 1,
              "image_file_name": photo.name, "content_hash": sidecar.content_hash,
              "model_id": sidecar.model_id, "roi": [1, 2, 3, 4],
              "edit_summary": {"total_strokes": 3}, "status": sidecar.status,
              "saved_at": "2026-01-02T03:04:05.000+00:00", "app_version": "0.1.0",
              "mask": {"file_name": mask_name, "sha256": bytes_hash(png),
                       "height": 8, "width": 12}}
    sidecar_path_for(photo).write_text(json.dumps(record, indent=2))


def test_format_1_sidecars_still_load_and_are_rewritten_as_one_file(photo):
    _write_format_1(photo, _state(photo, "A"))
    back = load_sidecar(photo)
    assert back.status == "A" and back.edited_mask.sum() == 24 and back.roi == (1, 2, 3, 4)
    assert back.edit_summary == {"total_strokes": 3} and back.app_version == "0.1.0"
    outcome = save_sidecar(back, photo)  # what the app does after the next edit
    assert outcome.conflict is None and outcome.problems == []
    assert sorted(p.name for p in photo.parent.iterdir()) == ["case.jpg",
                                                             "case.jpg.lesionviewer.json"]
    record = json.loads(sidecar_path_for(photo).read_text())
    assert record["format_version"] == 2 and record["mask"]["encoding"] == "png-base64"
    again = load_sidecar(photo)
    assert again.status == "A" and again.edited_mask.sum() == 24


@pytest.mark.parametrize("previous_format", [1, 2])
def test_a_kill_at_any_step_of_a_save_leaves_the_previous_or_the_new_state(
        photo, tmp_path, previous_format):
    """Deterministic: the save is cut at each of its file-system calls in turn (os._exit in a
    forked child, as kill -9 would: no cleanup). Each time the sidecar must read back as the
    previous state A or the new B, never damaged; the next save (C) must get past the dead
    child's lock; and no lock file may be left."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    if previous_format == 1:
        _write_format_1(photo, _state(photo, "A"))
    else:
        save_sidecar(_state(photo, "A"), photo)
    run = subprocess.run([sys.executable, str(CHILD), str(photo.parent), str(tmp_path / "work"),
                          photo.name], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    trials = [json.loads(line) for line in run.stdout.splitlines()]
    crashed = [t for t in trials if t["exit"] == 9]
    assert len(crashed) >= 8, trials  # lock, temp file, write, fsync, rename, folder fsync...
    assert trials[-1]["exit"] == 0 and trials[-1]["after_crash"]["state"] == "B"
    for t in trials:
        assert t["after_crash"] in ({"state": "A", "problems": []},
                                    {"state": "B", "problems": []}), t
        assert t["after_next_save"] == {"state": "C", "problems": []}, t
        assert t["locks"] == [], t
    states = [t["after_crash"]["state"] for t in crashed]
    assert "A" in states and "B" in states  # the cut fell on both sides of the switch
    assert states == sorted(states)  # ...and it is one switch, not back and forth


def test_a_kill_at_random_instants_during_saves_never_damages_the_sidecar(photo):
    """Realistic: a process saving as fast as it can is killed (SIGKILL) at random instants."""
    save_sidecar(_state(photo, "A"), photo)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from lesionviewer.io.hashing import content_hash
        from lesionviewer.io.sidecar import CaseSidecar, save_sidecar
        photo = {str(photo)!r}
        digest = content_hash(photo)
        print("ready", flush=True)
        n = 0
        while True:
            n += 1
            name = "ABCDEF"[n % 6]
            mask = np.zeros((8, 12), bool)
            mask[: "ABCDEFGH".index(name) + 2, :] = True
            save_sidecar(CaseSidecar("case.jpg", digest, "m@1", mask, status=name), photo)
    """)
    rng = random.Random(12)
    kills = 0
    for _ in range(12):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        child.kill()
        child.wait()
        kills += 1
        problems: list[SidecarProblem] = []
        back = load_sidecar(photo, problems=problems)
        assert problems == [] and back is not None
        assert back.edited_mask.sum() == 12 * ("ABCDEFGH".index(back.status) + 2)
    assert kills == 12
    assert not list(photo.parent.glob("*.damaged-*"))


def test_a_second_program_keeps_both_edits(photo, monkeypatch):
    """Two programs on one case: each read state A; the second's save must not replace the
    first's, and says why."""
    save_sidecar(_state(photo, "A"), photo)
    first, second = load_sidecar(photo), load_sidecar(photo)
    first.status, first.edited_mask = "B", _state(photo, "B").edited_mask
    with monkeypatch.context() as other_program:
        other_program.setattr(sidecar_module, "RUN_ID", "another running lesionviewer")
        assert save_sidecar(first, photo).conflict is None
    second.status, second.edited_mask = "C", _state(photo, "C").edited_mask
    outcome = save_sidecar(second, photo)
    assert "another lesionviewer" in outcome.conflict and str(os.getpid()) in outcome.conflict
    assert outcome.path.name.startswith("case.jpg.lesionviewer-conflict-")
    assert load_sidecar(photo).status == "B"  # the first writer's edits stay in place
    from lesionviewer.io.sidecar_record import decode

    assert decode(outcome.path, outcome.path.read_bytes()).status == "C"  # and ours are kept


def test_a_writer_that_saw_no_sidecar_does_not_replace_one_that_appeared(photo, monkeypatch):
    late = _state(photo, "B")
    late.replaces = ()  # the case had no sidecar when it was opened
    with monkeypatch.context() as other_program:  # ...then another program saved one
        other_program.setattr(sidecar_module, "RUN_ID", "another running lesionviewer")
        save_sidecar(_state(photo, "A"), photo)
    outcome = save_sidecar(late, photo)
    assert outcome.conflict and load_sidecar(photo).status == "A"


def test_this_programs_own_saves_never_conflict(photo):
    """An export records "exported" in a case's sidecar while the app holds edits of it: the
    app's next autosave replaces it without a conflict copy."""
    save_sidecar(_state(photo, "A"), photo)
    app_view = load_sidecar(photo)
    exporter_view = load_sidecar(photo)
    exporter_view.status = "exported"
    save_sidecar(exporter_view, photo)
    app_view.status = "B"
    assert save_sidecar(app_view, photo).conflict is None
    assert load_sidecar(photo).status == "B"


def test_saving_again_what_one_read_or_wrote_is_no_conflict(photo, tmp_path):
    save_sidecar(_state(photo, "A"), photo, tmp_path / "fb")
    mine = load_sidecar(photo, tmp_path / "fb")
    for name in "BCD":
        mine.status = name
        assert save_sidecar(mine, photo, tmp_path / "fb").conflict is None
    assert load_sidecar(photo).status == "D"
    assert not list(photo.parent.glob("*conflict*"))


def test_a_lock_held_by_a_live_process_waits_then_says_who(tmp_path):
    lock = tmp_path / "x.lesionviewer.json.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from lesionviewer.io.atomic import lock_file
        import sys, time
        with lock_file({str(lock)!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=f"pid {holder.pid} on {atomic.HOST}"):
            with atomic.lock_file(lock, timeout_s=0.3):
                pass
        holder.kill()  # kill -9 leaves its lock file behind...
        holder.wait()
        assert lock.exists()
        with atomic.lock_file(lock, timeout_s=0.3):  # ...which is stale and taken over
            assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert not lock.exists()
    finally:
        holder.kill()
        holder.wait()
