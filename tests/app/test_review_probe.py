"""While the case store is away, the app asks every few seconds whether it is back with
CaseStore.ping (one round trip), not with a query of its own."""

from __future__ import annotations

import pytest

from lesionviewer.app.review.store_service import StoreService
from lesionviewer.store import CaseStore

pytestmark = pytest.mark.gui


def test_the_probe_pings_the_store(qtbot, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(CaseStore, "ping", lambda store: calls.append("ping"))
    monkeypatch.setattr(CaseStore, "role_of", lambda store, user: calls.append("role_of"))
    service = StoreService(tmp_path / "journal.json")
    with qtbot.waitSignal(service.opened, timeout=20_000):
        service.open(f"sqlite:///{tmp_path / 'cases.sqlite'}", "alice")
    calls.clear()
    service.probe()
    assert service.wait(10_000)
    assert calls == ["ping"]
    assert service.shutdown(10_000)
