"""The case list: thumbnail, name, status, GED, malignancy probability; sortable, filterable.

``CaseListModel`` (QAbstractTableModel) holds the :class:`Case` records; a
``CaseSortProxy`` sorts them, with unknown values always last, and the panel offers the
"review queue" order (most uncertain first).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import (QAbstractTableModel, QItemSelectionModel, QModelIndex,
                            QSortFilterProxyModel, Qt, QTimer, Signal)
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QMenu, QStyle, QTableView,
                               QVBoxLayout, QWidget)

from lesionviewer.app.services.case import Case, CaseStatus

COLUMNS = ("Case", "Status", "GED", "Malig.", "Review", "Raters differ")
NAME, STATUS, GED, MALIGNANCY, REVIEW, DISAGREEMENT = range(6)
CHOOSABLE = (STATUS, GED, MALIGNANCY, REVIEW)  # the name always shows; DISAGREEMENT is a sort key
REVIEW_ORDER = ("new", "analysed", "in review", "corrected", "signed off")  # ReviewState values
SORT_ROLE = Qt.UserRole + 1
CASE_ROLE = Qt.UserRole + 2
THUMB_SIZE = 48

_STATUS_COLOURS = {
    CaseStatus.ERROR: "#d9534f", CaseStatus.ANALYSING: "#f0ad4e", CaseStatus.QUEUED: "#999999",
    CaseStatus.EDITED: "#5bc0de", CaseStatus.EXPORTED: "#5cb85c",
}


class CaseListModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.cases: list[Case] = []
        self._rows: dict[Path, int] = {}
        self._icons: dict[Path, tuple] = {}  # path -> (thumbnail QImage, QIcon)
        # status counts kept up to date per change, so the summary line never walks the list
        self._counted: dict[Path, CaseStatus] = {}
        self.status_counts: Counter[CaseStatus] = Counter()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.cases)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole:
            return ("Generalized Energy Distance among the model's sample masks: higher = less "
                    "sure" if section == GED else "Malignancy probability (decision support, not "
                    "a diagnosis)" if section == MALIGNANCY else "Review state in the case "
                    "store" if section == REVIEW else "GED among the raters' masks: higher = "
                    "they disagree more" if section == DISAGREEMENT else None)
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        case, col = self.cases[index.row()], index.column()
        if role == CASE_ROLE:
            return case
        if role == Qt.DisplayRole:
            return self._display(case, col)
        if role == SORT_ROLE:
            return self._sort_key(case, col)
        if role == Qt.DecorationRole and col == NAME and case.status == CaseStatus.ERROR \
                and case.thumbnail is None:
            return QApplication.style().standardIcon(QStyle.SP_MessageBoxWarning)
        if role == Qt.DecorationRole and col == NAME and case.thumbnail is not None:
            cached = self._icons.get(case.path)
            if cached is None or cached[0] is not case.thumbnail:
                # a QIcon is scaled to the view's icon size; a QPixmap would not be
                cached = self._icons[case.path] = (case.thumbnail,
                                                   QIcon(QPixmap.fromImage(case.thumbnail)))
            return cached[1]
        if role == Qt.ToolTipRole and col == REVIEW and case.raters:
            return "Raters: " + ", ".join(case.raters)
        if role == Qt.ToolTipRole and col == MALIGNANCY and case.malignancy_withheld:
            return f"Malignancy figure withheld: {case.malignancy_withheld}"
        if role == Qt.ToolTipRole:
            return case.message or str(case.path)
        if role == Qt.ForegroundRole and col == MALIGNANCY and case.malignancy_withheld:
            return QBrush(QColor("#888888"))
        if role == Qt.ForegroundRole and col == STATUS and case.status in _STATUS_COLOURS:
            return QBrush(QColor(_STATUS_COLOURS[case.status]))
        if role == Qt.TextAlignmentRole and col in (GED, MALIGNANCY, DISAGREEMENT):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None

    @staticmethod
    def _display(case: Case, col: int) -> str:
        if col == NAME:
            return case.case_id
        if col == STATUS:
            if case.status == CaseStatus.ANALYSING and case.progress is not None:
                return f"analysing {case.progress:.0%}"
            return case.status.value
        if col == GED:
            return "" if case.ged is None else f"{case.ged:.3f}"
        if col == REVIEW:
            return case.review_state or ""
        if col == DISAGREEMENT:
            return "" if case.disagreement is None else f"{case.disagreement:.3f}"
        if case.malignancy_withheld:
            return "withheld"  # never a figure the model says must not be read
        if case.malignancy_probability is None:
            return ""
        return f"{case.malignancy_probability:.0%}"

    @staticmethod
    def _sort_key(case: Case, col: int):
        if col == NAME:
            return case.name.casefold()
        if col == STATUS:
            return list(CaseStatus).index(case.status)
        if col == GED:
            # The review queue (GED, highest first) puts cases whose result the model itself
            # distrusts (out-of-distribution photo, mask too uncertain: malignancy withheld)
            # above the rest, however low their GED: an OOD photo can have samples that agree.
            return None if case.ged is None else (bool(case.malignancy_withheld), case.ged)
        if col == REVIEW:
            state = case.review_state
            return REVIEW_ORDER.index(state) if state in REVIEW_ORDER else None
        if col == DISAGREEMENT:
            return case.disagreement
        return None if case.malignancy_withheld else case.malignancy_probability  # sorts last

    # --- editing the list ------------------------------------------------------------------
    def set_cases(self, cases: list[Case]) -> None:
        self.beginResetModel()
        self.cases = list(cases)
        self._rows = {c.path: i for i, c in enumerate(self.cases)}
        self._counted, self.status_counts = {}, Counter()
        for c in self.cases:
            self._count(c)
        self.endResetModel()

    def _count(self, case: Case) -> None:
        old = self._counted.get(case.path)
        if old is case.status:
            return
        if old is not None:
            self.status_counts[old] -= 1
        self.status_counts[case.status] += 1
        self._counted[case.path] = case.status

    def add_cases(self, cases: list[Case]) -> list[Case]:
        """Append cases not already listed; returns the cases now in the list for those paths."""
        new = [c for c in cases if c.path not in self._rows]
        if new:
            first = len(self.cases)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for c in new:
                self._rows[c.path] = len(self.cases)
                self.cases.append(c)
                self._count(c)
            self.endInsertRows()
        return [self.cases[self._rows[c.path]] for c in cases]

    def find(self, path: Path) -> Case | None:
        row = self._rows.get(Path(path))
        return None if row is None else self.cases[row]

    def index_of(self, case: Case, column: int = 0) -> QModelIndex:
        row = self._rows.get(case.path)
        return QModelIndex() if row is None else self.index(row, column)

    def case_changed(self, case: Case, first: int = NAME, last: int = DISAGREEMENT) -> None:
        """The case's row changed in columns ``first..last``: only those cells are re-read
        (the view's column widths are fixed, so nothing else is)."""
        row = self._rows.get(case.path)
        if row is not None:
            self._count(case)
            self.dataChanged.emit(self.index(row, first), self.index(row, last))


class CaseSortProxy(QSortFilterProxyModel):
    """Sorts on SORT_ROLE with missing values (not analysed yet) last in either order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterKeyColumn(NAME)
        self.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.setDynamicSortFilter(True)
        self.row_filter = None  # Case -> bool, beside the name filter (review state, rater)

    def set_row_filter(self, row_filter) -> None:
        self.beginFilterChange()
        self.row_filter = row_filter
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        if not super().filterAcceptsRow(source_row, source_parent):
            return False
        return self.row_filter is None or bool(self.row_filter(
            self.sourceModel().cases[source_row]))

    def lessThan(self, left: QModelIndex, right: QModelIndex) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            if a is None and b is None:
                return left.row() < right.row()
            missing_is_less = self.sortOrder() == Qt.DescendingOrder
            return (a is None) == missing_is_less
        if a == b:
            return left.row() < right.row()
        return a < b


SORTS = {  # label -> (column, order); "folder order" is the model's own order
    "Folder order": (-1, Qt.AscendingOrder),
    "Review queue: most uncertain first": (GED, Qt.DescendingOrder),
    "Malignancy: highest first": (MALIGNANCY, Qt.DescendingOrder),
    "Status": (STATUS, Qt.AscendingOrder),
    "Review queue: raters disagree most": (DISAGREEMENT, Qt.DescendingOrder),
    "Review state": (REVIEW, Qt.AscendingOrder),
    "Name": (NAME, Qt.AscendingOrder),
}
REVIEW_QUEUE = "Review queue: most uncertain first"
RATER_QUEUE = "Review queue: raters disagree most"


class CaseListPanel(QWidget):
    """Filter box, sort choice, the table and a one-line count of what the list holds."""

    current_case_changed = Signal(object)  # Case or None

    def __init__(self, model: CaseListModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.proxy = CaseSortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.filter_edit = QLineEdit(placeholderText="Filter by name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(list(SORTS))
        self.sort_combo.setToolTip("Order of the list; the review queue puts the cases the model "
                                   "is least sure about first")
        self.sort_combo.currentTextChanged.connect(self.set_sort)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        # Case names share long prefixes (ISIC_00…): keep both ends visible in a narrow list.
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setIconSize(QPixmap(THUMB_SIZE, THUMB_SIZE).size())
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_SIZE + 6)
        # Columns sized to their contents re-read every row on every change (a 1,000-case
        # folder froze the app ~1 s per status change); fixed widths from the font instead.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setSectionResizeMode(NAME, QHeaderView.Stretch)
        metrics = self.table.fontMetrics()
        # "analysing 40%" is elided in the middle ("anal…40%"): the name needs the room more
        for col, widest in ((STATUS, "analysing"), (GED, "0.000"), (MALIGNANCY, "withheld"),
                            (REVIEW, "signed off")):
            text = max((widest, COLUMNS[col]), key=metrics.horizontalAdvance)
            header.resizeSection(col, metrics.horizontalAdvance(text) + 24)
        self.table.setColumnHidden(DISAGREEMENT, True)  # a sort key (the rater queue) only
        # Every column shown left the name ~0 px beside its thumbnail in the default 350 px dock:
        # the review state starts hidden (the Review panel and filter show it; a team store
        # shows the column), and the header's menu shows or hides any column but the name.
        self.table.setColumnHidden(REVIEW, True)
        self.columns_chosen = False  # the user's own choice, kept in the settings
        header.setContextMenuPolicy(Qt.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        order = QHBoxLayout()
        order.addWidget(QLabel("Order"))
        order.addWidget(self.sort_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_edit)
        layout.addLayout(order)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._summary_timer = QTimer(self, singleShot=True, interval=100)  # one per burst
        self._summary_timer.timeout.connect(self._update_summary)
        for signal in (model.dataChanged, model.modelReset, model.rowsInserted):
            signal.connect(lambda *_: self._summary_timer.start())
        self._update_summary()

    def column_menu(self) -> QMenu:
        """Checkable actions showing or hiding every column but the name (and the sort key)."""
        menu = QMenu("Columns", self)
        for col in CHOOSABLE:
            action = menu.addAction(COLUMNS[col])
            action.setCheckable(True)
            action.setChecked(not self.table.isColumnHidden(col))
            action.toggled.connect(lambda shown, c=col: self._choose_column(c, shown))
        return menu

    def _choose_column(self, col: int, shown: bool) -> None:
        self.table.setColumnHidden(col, not shown)
        self.columns_chosen = True

    def hidden_column_names(self) -> list[str]:
        return [COLUMNS[c] for c in CHOOSABLE if self.table.isColumnHidden(c)]

    def set_hidden_column_names(self, names) -> None:
        """The user's earlier choice (from the settings); unknown names are ignored."""
        for col in CHOOSABLE:
            self.table.setColumnHidden(col, COLUMNS[col] in names)
        self.columns_chosen = True

    def _column_menu(self, pos) -> None:
        self.column_menu().exec(self.table.horizontalHeader().mapToGlobal(pos))

    def set_sort(self, label: str) -> None:
        column, order = SORTS[label]
        if self.sort_combo.currentText() != label:
            self.sort_combo.setCurrentText(label)
        self.table.sortByColumn(column, order)
        current = self.current_case()
        if current is not None:
            self.table.scrollTo(self.proxy.mapFromSource(self.model.index_of(current)))

    def current_case(self) -> Case | None:
        index = self.table.currentIndex()
        return index.data(CASE_ROLE) if index.isValid() else None

    def select_case(self, case: Case) -> None:
        index = self.proxy.mapFromSource(self.model.index_of(case))
        if index.isValid():
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
            self.table.scrollTo(index)

    def step(self, delta: int) -> None:
        """Next (+1) / previous (-1) case in the list's current order."""
        rows = self.proxy.rowCount()
        if rows == 0:
            return
        current = self.table.currentIndex()
        row = 0 if not current.isValid() else min(rows - 1, max(0, current.row() + delta))
        self.table.selectionModel().setCurrentIndex(
            self.proxy.index(row, 0), QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.table.scrollTo(self.proxy.index(row, 0))

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.current_case_changed.emit(current.data(CASE_ROLE) if current.isValid() else None)

    def _update_summary(self, *_) -> None:
        n = len(self.model.cases)
        parts = [f"{n} case" if n == 1 else f"{n} cases"]
        parts += [f"{k} {s.value}" for s in CaseStatus
                  if s != CaseStatus.NEW and (k := self.model.status_counts[s]) > 0]
        self.summary.setText(" · ".join(parts))
