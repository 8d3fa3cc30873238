"""The case list keeps the case's name readable: with every column shown the name got ~0 px
beside its thumbnail in the default dock (seen in the bundle's screenshot). The review state
starts hidden on one desk, and the header's menu shows or hides the other columns."""

from __future__ import annotations

import pytest

from lesionviewer.app.views.case_list import GED, MALIGNANCY, NAME, REVIEW, THUMB_SIZE

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("size", [(1500, 920), (1024, 700)])
def test_the_name_column_has_room_for_a_name_beside_the_thumbnail(make_window, case_folder,
                                                                   result_of, qtbot, size):
    window = make_window(background=False)
    window.open_paths([case_folder])
    result_of(window)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0], timeout=2_000)
    table = window.case_list.table
    name_room = table.columnWidth(NAME) - THUMB_SIZE - 8
    assert name_room >= table.fontMetrics().horizontalAdvance("ISIC_0000013")


def test_the_header_menu_shows_and_hides_columns_but_never_the_name(make_window, qtbot):
    window = make_window(background=False)
    panel = window.case_list
    assert panel.table.isColumnHidden(REVIEW)
    menu = panel.column_menu()
    actions = {a.text(): a for a in menu.actions()}
    assert "Case" not in actions
    actions["Review"].setChecked(True)
    assert not panel.table.isColumnHidden(REVIEW)
    actions["Malig."].setChecked(False)
    assert panel.table.isColumnHidden(MALIGNANCY)


def test_the_columns_the_user_chose_come_back_after_a_restart(make_window, qtbot):
    window = make_window(background=False)
    actions = {a.text(): a for a in window.case_list.column_menu().actions()}
    actions["Review"].setChecked(True)
    actions["GED"].setChecked(False)
    window.close()
    again = make_window(background=False)
    table = again.case_list.table
    assert not table.isColumnHidden(REVIEW) and table.isColumnHidden(GED)
    assert not table.isColumnHidden(MALIGNANCY)
