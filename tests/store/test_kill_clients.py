"""kill -9 of a program in the middle of saving: the store opens clean (SQLite's
integrity_check passes), every save the program was told was done is there, and only the
save under way can be missing (issue 9: at most the last 2 s of edits lost).

benchmarks/store_kill.py repeats this 30 times per backend; here 3 kills each.
"""

from __future__ import annotations


def test_kill_mid_commit_loses_at_most_the_save_under_way(store_clients, store_url, tmp_path):
    clients = store_clients
    case_ids = clients.make_cases(store_url, tmp_path / "photos", 4)
    rounds = clients.kill_rounds(store_url, case_ids, 3, tmp_path / "run", seed=1)
    for result in rounds:
        assert result["integrity"] == "ok"
        assert result["confirmed"] >= 1 and result["missing"] == 0, result
        assert result["since_last_s"] < 2.0, result  # the bound, generous for saves of ms
    # the store still takes edits after the kills
    from lesionviewer.store import CaseStore

    with CaseStore.open(store_url, user="after") as store:
        saved = store.save_mask(case_ids[0], clients.fingerprint("after", 0), None)
        assert store.history(case_ids[0])[-1].id == saved.version.id
