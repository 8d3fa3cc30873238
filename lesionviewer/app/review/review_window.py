"""Team review in the main window: the Review menu and dock, the rater outlines, the
"store unreachable" banner, the user in the status bar, the case list's review filters.

:func:`install_review` is called once by the window; it opens the case store (``--db``,
``$LESIONVIEWER_DB``, the settings' URL, or the SQLite file in the data folder) off the GUI
thread and wires the parts together.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QScrollArea

from lesionviewer.app.views.case_list import RATER_QUEUE, REVIEW as REVIEW_COLUMN, REVIEW_QUEUE
from lesionviewer.app.docks import PANEL_MIN_WIDTH
from lesionviewer.app.views.message_bar import Banner
from lesionviewer.app.review.rater_overlay import RaterOverlay
from lesionviewer.app.review.review_filter import ReviewFilter
from lesionviewer.app.review.review_lock import EditLock
from lesionviewer.app.review.review_panel import IN_REVIEW, SIGNED_OFF, ReviewPanel, allowed_moves, when
from lesionviewer.app.review.review_sync import ReviewSync
from lesionviewer.app.review.store_service import StoreService
from lesionviewer.store.states import ReviewState

JOURNAL_NAME = "store-journal.json"  # lesionviewer.store.offline's, in the app's data folder
OFFLINE_STYLE = "background:#4d3b12; color:#fff4d6; padding:6px; font-weight:600;"


class ReviewWindow(QObject):
    def __init__(self, window, db_url: str | None = None):
        super().__init__(window)
        self.window = window
        self.service = StoreService(window.dirs.data / JOURNAL_NAME, self)
        self.sync = ReviewSync(window.session, self.service, self)
        self.sync.compare_requested = lambda: self.compare.setChecked(True)
        self.panel = ReviewPanel()
        self.overlay = RaterOverlay(window.canvas, self)
        self.dock = self._make_dock()
        self.banner = Banner()
        self.banner.setStyleSheet(OFFLINE_STYLE)
        window.centralWidget().layout().insertWidget(1, self.banner)  # below the model's
        self.user_label = QLabel("Case store: opening…")
        window.statusBar().addPermanentWidget(self.user_label)
        self.filter = ReviewFilter(window.case_list, self.sync, self)
        self.lock = EditLock(window, self.sync, self)  # a signed-off case is read-only
        self._build_menu()
        self._connect()
        # --db, $LESIONVIEWER_DB, the settings' URL, or the SQLite file in this window's own
        # data folder (the self-test's is apart): resolved on the store thread
        self.cli_url = db_url
        self.reopen()

    # --- construction ----------------------------------------------------------------------
    def _make_dock(self) -> QDockWidget:
        w = self.window
        scroll = QScrollArea()
        scroll.setObjectName("review-scroll")
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        dock = QDockWidget("Review", w)
        dock.setObjectName("review-dock")
        dock.setWidget(scroll)
        dock.setAllowedAreas(Qt.LeftDockWidgetArea | Qt.RightDockWidgetArea)
        dock.setMinimumWidth(PANEL_MIN_WIDTH)
        self.panel.setMinimumWidth(PANEL_MIN_WIDTH)
        # Closed until asked for (Review > Review panel), then a tab beside the result panel:
        # it never takes width from the photo (docks.py keeps half the window for it).
        if not (w.settings.window_state and w.restoreDockWidget(dock)):
            self._dock_beside_result(dock)
            dock.hide()
        w.docks.reset_action.triggered.connect(lambda: self._dock_beside_result(self.dock))
        return dock

    def _dock_beside_result(self, dock: QDockWidget) -> None:
        """A tab of the result panel's dock (also what View > Reset panel layout does)."""
        w = self.window
        dock.setFloating(False)
        w.addDockWidget(Qt.RightDockWidgetArea, dock)
        w.tabifyDockWidget(w.docks.panel_dock, dock)
        w.docks.panel_dock.raise_()

    def _build_menu(self) -> None:
        w = self.window
        bar = w.menuBar()
        help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
        menu = self.menu = w.menuBar().addMenu("Re&view")
        if help_action is not None:
            bar.insertMenu(help_action, menu)
        self.show_panel = self.dock.toggleViewAction()
        self.show_panel.setText("Review &panel")
        self.show_panel.triggered.connect(lambda on: on and self.dock.raise_())
        menu.addAction(self.show_panel)
        self.compare = QAction("&Compare raters", w, checkable=True)
        self.compare.setShortcut("C")
        self.compare.setToolTip("Each rater's latest mask as an outline on the photo (C)")
        w.addAction(self.compare)
        menu.addAction(self.compare)
        menu.addSeparator()
        self.move_actions: dict[str, QAction] = {}
        for state, text in ((IN_REVIEW, "&Start review"),
                            (ReviewState.CORRECTED.value, "Mark &corrected"),
                            (SIGNED_OFF, "Sign &off…")):
            action = QAction(text, w)
            action.triggered.connect(lambda _=False, s=state: self._menu_move(s))
            self.move_actions[state] = action
            menu.addAction(action)
        menu.addSeparator()
        by_model = QAction("Review queue: model &most uncertain first", w)
        by_model.triggered.connect(lambda: w.case_list.set_sort(REVIEW_QUEUE))
        by_raters = QAction("Review queue: &raters disagree most", w)
        by_raters.triggered.connect(self.sort_by_disagreement)
        menu.addActions([by_model, by_raters])

    def _connect(self) -> None:
        w, sync, svc = self.window, self.sync, self.service
        svc.opened.connect(self._on_opened)
        svc.online_changed.connect(self._on_online_changed)
        svc.held_changed.connect(lambda _n: self._show_banner())
        svc.replayed.connect(self._on_replayed)
        sync.message.connect(w.show_message)
        sync.review_ready.connect(self._on_review)
        sync.case_updated.connect(w.session.cases.case_changed)
        self.panel.state_requested.connect(sync.set_state)
        sync.role_changed.connect(self.reopen)
        self.panel.compare_toggled.connect(self.compare.setChecked)
        self.compare.toggled.connect(self._set_compare)
        w.case_list.sort_combo.currentTextChanged.connect(
            lambda label: label == RATER_QUEUE and sync.fetch_disagreement())
        w.session.case_shown.connect(lambda _cur: self._show_drawn_by())
        w.session.result_ready.connect(lambda _cur: self._show_drawn_by())
        w.session.cases.dataChanged.connect(lambda *_: self._show_drawn_by())

    def reopen(self) -> None:
        """Open the store (again, after the settings changed its URL or the user name)."""
        settings = self.window.settings
        self.sync.commit()  # edits made so far go to the store they were made under
        self.service.open(self.cli_url, settings.user_name or None,
                          settings_url=settings.db_url, data_dir=self.window.dirs.data)

    # --- store state -----------------------------------------------------------------------
    def _on_opened(self, identity) -> None:
        self.panel.set_identity(identity)
        place = "team store" if identity.url.startswith("postgresql") else "this desk"
        if place == "team store" and not self.window.case_list.columns_chosen:
            # several people's review states: worth a column, unless the user chose otherwise
            self.window.case_list.table.setColumnHidden(REVIEW_COLUMN, False)
        self.user_label.setText(f"{identity.user} ({identity.role.value}) · {place}")
        self.user_label.setToolTip(f"Case store: {identity.url}. Every mask and review move "
                                   f"is recorded as {identity.user}.")
        self.filter.add_raters([identity.user])
        self._update_moves()

    def _on_online_changed(self, online: bool, why: str) -> None:
        self.panel.set_online(online)
        if not online and self.service.identity is None:
            self.user_label.setText("Case store not reachable")
            self.user_label.setToolTip(why)
        self._show_banner(why)
        self._update_moves()

    def _show_banner(self, why: str = "") -> None:
        svc = self.service
        if svc.online:
            self.banner.set_text(None)
            return
        held = (f" {svc.held} edit(s) are held and will be written when it is back."
                if svc.held else " Edits made now are held and written when it is back.")
        self.banner.set_text(
            f"The case store ({self.url_for_display()}) is not reachable: review is read-only."
            f"{held} Your edits are also saved next to the photos as usual."
            + (f" ({why})" if why else ""))

    def url_for_display(self) -> str:
        return self.service.display_url or "not opened"

    def _on_replayed(self, replayed) -> None:
        if not replayed.conflicts and not replayed.refused:  # those have their own message
            self.window.show_message(f"The case store is back: {replayed.written} held "
                                     "write(s) written.", "info")

    # --- the case on screen ----------------------------------------------------------------
    def _on_review(self, review) -> None:
        self.panel.show_review(review)
        self.overlay.set_outlines([] if review is None else review.outlines)
        if review is not None:
            self.filter.add_raters(v.author for v in review.versions)
        self._show_drawn_by()
        self._update_moves()
        self.window.update_legend()

    def _show_drawn_by(self) -> None:
        cur, review, identity = self.window.session.current, self.sync.review, self.service.identity
        if cur is None:
            self.panel.set_drawn_by("–")
            return
        editor = cur.editor
        user = identity.user if identity is not None else "you"
        mine = review.version_of(user) if review is not None else None
        if editor is None or (not editor.edited and mine is None):
            model = cur.analysis.model_id if cur.analysis is not None else None
            text = f"the model ({model})" if model else "nobody yet"
        elif cur.case.unsaved:
            text = f"{user}, editing now (not saved yet)"
        elif mine is not None:
            text = f"{user}, version {mine.number}, {when(mine.created_at)}"
        else:
            text = f"{user} (saved next to the photo; not in the store yet)"
        self.panel.set_drawn_by(text)

    def _set_compare(self, on: bool) -> None:
        if self.panel.compare.isChecked() != on:
            self.panel.compare.setChecked(on)
        self.overlay.set_visible(on)
        self.window.update_legend()

    def _update_moves(self) -> None:
        review, identity = self.sync.review, self.service.identity
        usable = review is not None and identity is not None and self.service.online
        for state, action in self.move_actions.items():
            allowed = usable and state in allowed_moves(review.record.state)
            if state == SIGNED_OFF:
                allowed = allowed and identity.reviewer
            action.setEnabled(bool(allowed))

    def _menu_move(self, state: str) -> None:
        if state == SIGNED_OFF:  # the comment is typed in the panel
            self.dock.show()
            self.dock.raise_()
            self.panel.comment.setFocus()
            return
        self.sync.set_state(state)

    def sort_by_disagreement(self) -> None:
        self.window.case_list.set_sort(RATER_QUEUE)

    # --- legend and quitting ---------------------------------------------------------------
    def legend_entries(self):
        return self.overlay.legend_entries()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Quitting: the last edits to the store, then close it (bounded wait)."""
        self.sync.commit()
        return self.service.shutdown(timeout_ms)


def install_review(window, db_url: str | None = None) -> ReviewWindow:
    return ReviewWindow(window, db_url)
