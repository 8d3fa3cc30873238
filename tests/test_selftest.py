"""`lesionviewer --selftest`: passes on the shipped model and the bundled sample (and the case
store), refuses a tampered model with a reason a clinician can act on, and notices any network
use. Also the
resources/ files the installers rely on, and the bundle's folder layout contract."""

from __future__ import annotations

import configparser
import shutil
import socket
import sys
from pathlib import Path

import pytest

from lesionviewer import bundle, selftest
from lesionviewer.cli import main as cli_main
from lesionviewer.engine.checkpoint import find_default_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHIPPED = sorted(d for d in MODELS.glob("*") if (d / "config.json").is_file()) if MODELS.is_dir() else []
needs_model = pytest.mark.skipif(not SHIPPED, reason="no model is shipped in models/")


@pytest.fixture
def model_copy(tmp_path) -> Path:
    copy = tmp_path / SHIPPED[0].name
    copy.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(SHIPPED[0] / name, copy / name)
    return copy


@needs_model
def test_selftest_passes_with_the_shipped_model_and_sample(monkeypatch):
    monkeypatch.delenv("LESIONVIEWER_MODEL", raising=False)
    lines: list[str] = []
    code = selftest.run_selftest(device="cpu", window=False, out=lines.append)
    text = "\n".join(lines)
    assert code == 0, text
    assert lines[-1].startswith("OK")
    assert f"model: {SHIPPED[0].name}" in text and "files match their SHA-256" in text
    assert "device: cpu" in text
    assert "Dice" in text and "ISIC_0000068.jpg 256x192" in text
    assert "case store: SQLite opened and migrated, sample case stored as 'analysed'" in text
    assert "PostgreSQL driver psycopg" in text
    assert "network: no connection" in text


def test_a_case_store_that_cannot_open_fails_the_selftest_in_words(monkeypatch):
    from lesionviewer.store import CaseStore

    def broken_open(cls, *args, **kwargs):
        raise FileNotFoundError("migrations/env.py")

    monkeypatch.setattr(selftest, "check_model", lambda report, model, device: None)
    monkeypatch.setattr(selftest, "check_sample", lambda report, analyzer: None)
    monkeypatch.setattr(CaseStore, "open", classmethod(broken_open))
    lines: list[str] = []
    assert selftest.run_selftest(window=False, out=lines.append) == 1
    assert lines[-1].startswith("FAILED: the case store does not work (FileNotFoundError")
    assert "reinstall lesionviewer" in lines[-1]


@needs_model
def test_a_tampered_model_is_refused_in_words_and_with_exit_status_1(model_copy, capsys):
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01  # one bit in one weight
    weights.write_bytes(bytes(data))
    code = cli_main(["--selftest", "--model", str(model_copy), "--device", "cpu", "--no-window"])
    out = capsys.readouterr().out
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1, out
    assert "changed or damaged since installation" in failed[0]
    assert "Reinstall lesionviewer" in failed[0]
    assert "OK" not in out.splitlines()[-1]


def test_a_missing_model_folder_fails_with_a_reason(tmp_path, capsys):
    code = cli_main(["--selftest", "--model", str(tmp_path / "nowhere"), "--no-window"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[-1].startswith("FAILED: the analysis model cannot be used")


def test_network_use_during_the_selftest_fails_it(monkeypatch):
    def check_sample_that_phones_home(report, analyzer):
        try:
            socket.getaddrinfo("example.invalid", 443)
        except OSError:
            pass

    monkeypatch.setattr(selftest, "check_model", lambda report, model, device: None)
    monkeypatch.setattr(selftest, "check_sample", check_sample_that_phones_home)
    lines: list[str] = []
    assert selftest.run_selftest(window=False, out=lines.append, store=False) == 1
    assert lines[-1].startswith("FAILED: lesionviewer tried to reach the network")
    assert "example.invalid" in lines[-1]


def test_process_age_is_the_time_since_this_process_started():
    age = selftest.process_age()
    if not sys.platform.startswith("linux"):
        pytest.skip("read from /proc")
    assert age is not None and 0 < age < 24 * 3600


@pytest.mark.gui
def test_the_window_check_opens_the_real_main_window_offscreen(qapp, tmp_path, tiny_model_dir):
    from lesionviewer.app.dialogs.selftest_window import open_window

    result = open_window(tmp_path / "home", str(tiny_model_dir))
    assert result.platform == "offscreen"
    assert result.width >= 100 and result.height >= 100
    assert result.seconds > 0
    assert (tmp_path / "home" / "config").is_dir()  # not the user's settings folder


def test_resources_hold_the_icon_sizes_desktop_entry_and_sample():
    from PIL import Image

    icons = bundle.resources_dir() / "icons"
    assert bundle.icon_path().read_text(encoding="utf-8").lstrip().startswith("<?xml")
    for size in (16, 32, 48, 64, 128, 256, 512):
        with Image.open(bundle.icon_path(size)) as im:
            assert im.size == (size, size)
    with Image.open(icons / "lesionviewer.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(bundle.resource("lesionviewer.desktop"), encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Icon"] == "lesionviewer"
    assert desktop["Exec"].startswith("/opt/lesionviewer/lesionviewer")
    for part in selftest.SAMPLE, selftest.SAMPLE_MASK:
        assert bundle.resource(*part).is_file()
    assert "CC BY-NC 4.0" in bundle.resource("sample", "ATTRIBUTION.md").read_text(encoding="utf-8")


def test_in_a_bundle_resources_and_the_model_are_found_under_meipass(tmp_path, monkeypatch):
    """packaging/lesionviewer.spec puts resources/ and models/<name>/ in the bundle's
    _internal folder (sys._MEIPASS); the app must look there."""
    internal = tmp_path / "_internal"
    model = internal / "models" / "some-model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.delenv("LESIONVIEWER_MODEL", raising=False)
    assert bundle.resources_dir() == internal / "resources"
    assert find_default_model() == model
    spec = (ROOT / "packaging" / "lesionviewer.spec").read_text(encoding="utf-8")
    assert '"resources"), "resources")' in spec and 'f"models/{MODEL.name}"' in spec
