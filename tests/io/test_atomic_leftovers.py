"""A save killed between mkstemp and os.replace leaves a hidden temp file; the next save in
that folder removes it once it is old enough to be certainly dead, and nothing else."""

from __future__ import annotations

import os
import time

from lesionviewer.io import atomic


def test_an_old_leftover_temp_file_goes_and_a_young_one_or_a_strangers_file_stays(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_swept_folders", set())
    old = tmp_path / ".ISIC_1.jpg.lesionviewer.json.k3_9ab2x.tmp"
    young = tmp_path / ".ISIC_2.jpg.lesionviewer.json.q0wz81mm.tmp"
    stranger = tmp_path / ".notes.tmp"
    for f in (old, young, stranger):
        f.write_bytes(b"{half a save")
    ancient = time.time() - 2 * atomic.LEFTOVER_AGE_S
    os.utime(old, (ancient, ancient))
    os.utime(stranger, (ancient, ancient))

    atomic.write_json_atomic(tmp_path / "ISIC_3.jpg.lesionviewer.json", {"format": 2})

    assert not old.exists()
    assert young.exists() and stranger.exists()
    assert (tmp_path / "ISIC_3.jpg.lesionviewer.json").exists()
