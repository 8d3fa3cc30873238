"""packaging/linux/install.sh and uninstall.sh on a stand-in bundle, staged under DESTDIR:
the folder lands in PREFIX read-only, the menu entry points at it, the icons and the PATH
link are in place, the self-test runs, and uninstall removes exactly that again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux installer")


@pytest.fixture
def fake_bundle(tmp_path) -> Path:
    """A folder shaped like dist/lesionviewer whose program only answers --selftest."""
    bundle = tmp_path / "unpacked" / "lesionviewer"
    (bundle / "_internal").mkdir(parents=True)
    shutil.copytree(ROOT / "resources", bundle / "_internal" / "resources")
    program = bundle / "lesionviewer"
    program.write_text('#!/bin/sh\n[ "$1" = --selftest ] && echo OK && exit 0\nexit 3\n')
    program.chmod(0o755)
    for name in ("install.sh", "uninstall.sh"):
        shutil.copy(LINUX / name, bundle / name)
    return bundle


def run(script: Path, destdir: Path, prefix: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DESTDIR=str(destdir), PREFIX=prefix)
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)


def test_install_then_uninstall(fake_bundle, tmp_path):
    root, prefix = tmp_path / "root", "/opt/lesionviewer"
    done = run(fake_bundle / "install.sh", root, prefix)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("OK")  # the installed program's self-test ran
    installed = root / "opt" / "lesionviewer"
    assert (installed / "lesionviewer").is_file() and (installed / "uninstall.sh").is_file()
    assert not (installed / "lesionviewer").stat().st_mode & 0o022  # not writable by users
    entry = (root / "usr/share/applications/lesionviewer.desktop").read_text()
    assert "Exec=/opt/lesionviewer/lesionviewer %F" in entry and "Icon=lesionviewer" in entry
    assert (root / "usr/share/icons/hicolor/256x256/apps/lesionviewer.png").is_file()
    assert (root / "usr/share/icons/hicolor/scalable/apps/lesionviewer.svg").is_file()
    assert os.readlink(root / "usr/local/bin/lesionviewer") == "/opt/lesionviewer/lesionviewer"

    done = run(installed / "uninstall.sh", root, prefix)
    assert done.returncode == 0, done.stderr
    assert not installed.exists()
    assert not (root / "usr/share/applications/lesionviewer.desktop").exists()
    assert not (root / "usr/local/bin/lesionviewer").is_symlink()
    assert not list((root / "usr/share/icons").rglob("lesionviewer*"))


def test_install_refuses_to_run_outside_an_unpacked_bundle(tmp_path):
    done = run(LINUX / "install.sh", tmp_path / "root", "/opt/lesionviewer")
    assert done.returncode == 1 and "unpacked lesionviewer folder" in done.stderr


def test_uninstall_refuses_an_unexpected_prefix(tmp_path):
    done = run(LINUX / "uninstall.sh", tmp_path / "root", "/usr")
    assert done.returncode == 1 and "unexpected name" in done.stderr
