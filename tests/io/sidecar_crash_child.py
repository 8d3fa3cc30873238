"""Run by test_sidecar_atomic.py: crash a sidecar save at every file-system step in turn.

For k = 1, 2, ... a forked child saves state "B" over the saved state "A" in a fresh copy of
the template folder and dies (os._exit, like kill -9: no cleanup, no finally) at its k-th
file-system call; the parent then reads the sidecar back, saves "C" (which must get past the
dead child's lock) and reads again. Prints one JSON line per k; stops after the first k the
save survives. Usage: sidecar_crash_child.py TEMPLATE_FOLDER WORK_FOLDER PHOTO_NAME
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from lesionviewer.io.hashing import content_hash
from lesionviewer.io.sidecar import CaseSidecar, load_sidecar, save_sidecar

STEPS = ("open", "write", "fsync", "close", "replace", "rename", "unlink", "chmod", "mkdir")


def state(photo: Path, name: str) -> CaseSidecar:
    mask = np.zeros((8, 12), bool)
    mask[: "ABC".index(name) + 2, :] = True
    return CaseSidecar(photo.name, content_hash(photo), "m@1", mask, status=name)


def crash_at(k: int) -> None:
    count = [0]
    for name in STEPS:
        real = getattr(os, name)

        def step(*args, _real=real, **kwargs):
            count[0] += 1
            if count[0] == k:
                os._exit(9)
            return _real(*args, **kwargs)

        setattr(os, name, step)


def seen(photo: Path) -> dict:
    problems = []
    sidecar = load_sidecar(photo, problems=problems)
    got = None if sidecar is None else sidecar.status
    if sidecar is not None:
        assert sidecar.edited_mask.sum() == 12 * ("ABC".index(got) + 2), "mask of another state"
    return {"state": got, "problems": [p.kind for p in problems]}


def main(template: Path, work: Path, photo_name: str) -> None:
    for k in range(1, 200):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        photo = work / photo_name
        new = state(photo, "B")
        pid = os.fork()
        if pid == 0:
            crash_at(k)
            save_sidecar(new, photo)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        after_crash = seen(photo)
        save_sidecar(state(photo, "C"), photo)
        after_next_save = seen(photo)
        leftovers = sorted(p.name for p in work.iterdir() if p.name.endswith(".lock"))
        print(json.dumps({"k": k, "exit": code, "after_crash": after_crash,
                          "after_next_save": after_next_save, "locks": leftovers}), flush=True)
        if code == 0:
            return


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
