"""The bad-input corpus (tests/data/make_bad_corpus.py) opened in the app: every bad entry is
marked 'error' with its one-line message, every good one gets its thumbnail, the first good
photo is shown, and the app quits with no loader thread blocked (issue 12)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from lesionviewer.app.services.case import CaseStatus

pytestmark = pytest.mark.gui


def _corpus_module():
    if "make_bad_corpus" in sys.modules:
        return sys.modules["make_bad_corpus"]
    path = Path(__file__).resolve().parents[1] / "data" / "make_bad_corpus.py"
    spec = importlib.util.spec_from_file_location("make_bad_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_bad_corpus"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def corpus(tmp_path):
    bc = _corpus_module()
    root = tmp_path / "bad-inputs"
    items = bc.make_corpus(root)
    yield bc, root, items
    bc.restore_permissions(root)


def test_the_app_opens_the_corpus_and_the_500_entry_folder(make_window, corpus, result_of, qtbot):
    bc, root, items = corpus
    window = make_window(background=False)
    window.open_paths([root / "corpus", root / "many"])
    cases = window.session.cases
    listed = [i for i in items if i.expect != bc.NOT_LISTED]
    # A link to a photo is the photo's own case (paths are resolved): one row for both.
    assert len(cases.cases) == len(listed) - 1

    def settled():
        return all(c.thumbnail is not None or c.status == CaseStatus.ERROR for c in cases.cases)

    qtbot.waitUntil(settled, timeout=120_000)
    for item in listed:
        case = cases.find(root / item.name) or cases.find((root / item.name).resolve())
        assert case is not None, item.name
        if item.expect == bc.REFUSED:
            assert case.status == CaseStatus.ERROR, item.name
            assert item.reason in case.message and "\n" not in case.message, case.message
        else:
            assert case.status != CaseStatus.ERROR and case.thumbnail is not None, item.name
    assert result_of(window).case.path == root / "corpus" / "alpha.png"  # the first good one
    assert "Unexpected error" not in window.message_bar.message()
    assert not list(root.rglob("*.lesionviewer*"))  # nothing written beside the photos
    window.close()
    assert window.session.loader.pool.waitForDone(5_000)
