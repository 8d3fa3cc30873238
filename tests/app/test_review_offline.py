"""The team store's server goes away while the app runs (a real PostgreSQL server, stopped and
started again): the app keeps working, read-only for review, with a banner; edits still go to
the sidecar and are held for the store; once the server is back the held edits are written in
order (no false conflict between them), the banner goes, and the next edit commits as usual.
A server that is down when the app starts is opened once it is up, and gets the cases and the
edits made meanwhile."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lesionviewer.app.correction.tools import Tool
from lesionviewer.store import CaseStore

pytestmark = [pytest.mark.gui, pytest.mark.slow]
CASE = "ISIC_0000068"


def _pg_module():
    if "pg_server" not in sys.modules:  # tests/ has no packages (import mode importlib)
        path = Path(__file__).resolve().parents[1] / "store" / "pg_server.py"
        spec = importlib.util.spec_from_file_location("pg_server", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["pg_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["pg_server"]


@pytest.fixture(scope="module")
def pg_server():
    pg = _pg_module()
    reason = pg.unavailable_reason()
    if reason:
        if os.environ.get("LESIONVIEWER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but: {reason}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {reason}")
    server = pg.PostgresServer()
    try:
        server.start()
    except pg.PostgresUnavailable as exc:
        pytest.skip(f"the PostgreSQL server did not start: {exc}")
    yield server
    server.stop()


def _stop(server) -> None:
    """The server goes away (a clean stop: connections refused), its data kept."""
    server._run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "-t", "30", "stop")


def _edit(window, cur, mouse_drag, row: float) -> None:
    h, w = cur.editor.mask.shape
    before = cur.editor.mask.copy()
    window.actions.tools[Tool.ERASER].trigger()
    mouse_drag(window, [(w * (0.2 + 0.06 * t), h * row) for t in range(11)])
    window.actions.tools[Tool.BRUSH].trigger()
    mouse_drag(window, [(w * (0.2 + 0.06 * t), h * row) for t in range(3)])
    assert not np.array_equal(before, cur.editor.mask)


def test_server_gone_read_only_banner_edits_held_and_written_once_back(
        make_window, case_folder, result_of, mouse_drag, qtbot, pg_server, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    # a team store records the database login: alice logs in as herself
    url = _pg_module().login_url(pg_server.url(pg_server.create_database()), "alice")
    monkeypatch.setenv("LESIONVIEWER_DB", url)  # not the settings: they would keep the password
    window = make_window(background=False, user_name="alice")
    review = window.review
    review.service.probe_ms = 300
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=30_000)
    assert "***" in review.service.identity.url and "team store" in review.user_label.text()
    window.open_paths([case_folder / f"{CASE}.jpg"])
    cur = result_of(window)
    # the analysis is recorded first (else it could be the write held below)
    qtbot.waitUntil(lambda: review.sync.review is not None
                    and review.sync.review.record.state.value == "analysed", timeout=20_000)
    assert not review.banner.isVisible()

    _stop(pg_server)
    _edit(window, cur, mouse_drag, 0.4)
    qtbot.waitUntil(lambda: review.banner.isVisible(), timeout=20_000)
    text = review.banner.text()
    assert "not reachable" in text and "read-only" in text and "***" in text
    assert "pw-" not in text  # never the password
    qtbot.waitUntil(lambda: review.service.held == 1, timeout=10_000)
    qtbot.waitUntil(lambda: "1 edit(s) are held" in review.banner.text(), timeout=5_000)
    qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=10_000)  # the sidecar as usual
    panel = review.panel
    assert not any(b.isEnabled() for b in panel.move_buttons.values())  # review read-only
    assert "not reachable" in panel.permission.text() or not panel.sign_off.isEnabled()
    _edit(window, cur, mouse_drag, 0.6)  # edits go on; the second one is held too
    qtbot.waitUntil(lambda: review.service.held == 2, timeout=10_000)

    pg_server._pg_ctl_start()  # the server is back
    qtbot.waitUntil(lambda: not review.banner.isVisible(), timeout=30_000)
    assert review.service.held == 0 and review.service.online
    qtbot.waitUntil(lambda: "2 held write(s) written" in window.message_bar.message(),
                    timeout=5_000)  # and no conflict between the two held saves
    with CaseStore.open(url, user="alice") as store:
        case_id = store.case_for_photo(cur.case.path).id
        versions = store.history(case_id, author="alice")
        assert [v.source for v in versions] == ["offline", "offline"]
        np.testing.assert_array_equal(versions[-1].mask, cur.editor.mask)

    with qtbot.waitSignal(review.sync.committed, timeout=10_000) as committed:
        _edit(window, cur, mouse_drag, 0.5)  # online again: committed at once, in line
    assert committed.args[0].conflict is None
    assert committed.args[0].version.parent_id == versions[-1].id


def test_a_server_down_at_start_is_opened_once_up_with_the_edits_made_meanwhile(
        make_window, case_folder, result_of, mouse_drag, qtbot, pg_server, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    # a team store records the database login: alice logs in as herself
    url = _pg_module().login_url(pg_server.url(pg_server.create_database()), "alice")
    monkeypatch.setenv("LESIONVIEWER_DB", url)
    _stop(pg_server)
    try:
        window = make_window(background=False, user_name="alice")
        review = window.review
        review.service.probe_ms = 300
        qtbot.waitUntil(lambda: review.banner.isVisible(), timeout=20_000)
        assert "not reachable" in review.user_label.text()
        window.open_paths([case_folder / f"{CASE}.jpg"])
        cur = result_of(window)  # the app works: analysis, editing, sidecar
        _edit(window, cur, mouse_drag, 0.4)
        qtbot.waitUntil(lambda: not cur.case.unsaved, timeout=10_000)
    finally:
        pg_server._pg_ctl_start()
    qtbot.waitUntil(lambda: review.service.identity is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not review.banner.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: review.sync.review is not None
                    and [v.author for v in review.sync.review.versions] == ["alice"],
                    timeout=20_000)
    with CaseStore.open(url, user="alice") as store:
        record = store.case_for_photo(cur.case.path)
        mask = store.latest_masks(record.id)["alice"].mask
    np.testing.assert_array_equal(mask, cur.editor.mask)
