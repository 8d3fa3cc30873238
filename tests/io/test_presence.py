"""A second lesionviewer opening a case that is open elsewhere is told (issue 12, item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from lesionviewer.io import presence
from lesionviewer.io.atomic import HOST
from lesionviewer.io.images import find_images


def test_a_second_owner_is_told_who_has_the_case_open(tmp_path):
    photo = tmp_path / "case.jpg"
    assert presence.claim(photo, "window-1") is None
    assert presence.claim(photo, "window-1") is None  # claiming again is harmless
    other = presence.claim(photo, "window-2")
    assert other["pid"] == os.getpid() and other["host"] == HOST
    assert f"pid {os.getpid()} on {HOST}, since " in presence.describe(other)
    presence.release(photo, "window-2")  # not its marker: stays
    assert presence.presence_path(photo).exists()
    presence.release(photo, "window-1")
    assert not presence.presence_path(photo).exists()
    assert presence.claim(photo, "window-2") is None


def test_the_marker_of_a_killed_program_is_taken_over(tmp_path):
    photo = tmp_path / "case.jpg"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from lesionviewer.io import presence
        presence.claim({str(photo)!r}, "killed")
        print("open", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert presence.claim(photo, "me")["owner"] == "killed"  # alive: told
        holder.kill()
        holder.wait()
        assert presence.claim(photo, "me") is None  # kill -9 left it: stale, taken over
        assert json.loads(presence.presence_path(photo).read_text())["owner"] == "me"
    finally:
        holder.kill()
        holder.wait()


def test_the_marker_is_hidden_and_never_listed_as_a_photo(tmp_path):
    photo = tmp_path / "case.jpg"
    photo.write_bytes(b"")
    presence.claim(photo, "me")
    assert presence.presence_path(photo).name.startswith(".")
    assert find_images(tmp_path) == [photo]


def test_a_folder_that_cannot_be_written_just_detects_nothing(tmp_path):
    assert presence.claim(tmp_path / "missing folder" / "case.jpg", "me") is None
