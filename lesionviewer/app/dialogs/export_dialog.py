"""The Export dialog: where to, which cases, ISIC naming, COCO file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QRadioButton,
                               QVBoxLayout, QWidget)


class ExportDialog(QDialog):
    """Asks for the export options; :meth:`choices` reads them back."""

    def __init__(self, parent: QWidget | None, default_dir: Path, isic_naming: bool,
                 current_name: str | None, case_count: int):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.folder = QLineEdit(str(default_dir))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.only_current = QRadioButton(f"This case ({current_name})" if current_name
                                         else "This case")
        self.only_current.setEnabled(current_name is not None)
        self.all_cases = QRadioButton(f"All {case_count} cases in the list (those with a mask)")
        (self.only_current if current_name else self.all_cases).setChecked(True)
        self.isic = QCheckBox("ISIC file names (<id>_segmentation.png)")
        self.isic.setChecked(isic_naming)
        self.coco = QCheckBox("One COCO JSON for the folder (lesionviewer_coco.json)")
        self.coco.setChecked(True)
        note = QLabel("Writes the mask (PNG 0/255, full size), 16-bit probability and variance "
                      "maps, an overlay PNG and a JSON record per case. Exported images carry "
                      "no EXIF or camera data. Photos from several folders go into matching "
                      "sub-folders, so two photos with one name never overwrite each other.")
        note.setWordWrap(True)
        note.setStyleSheet("color: gray;")
        form = QFormLayout()
        form.addRow("Folder", row)
        form.addRow("Cases", self.only_current)
        form.addRow("", self.all_cases)
        form.addRow("", self.isic)
        form.addRow("", self.coco)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def choices(self) -> tuple[Path, bool, bool, bool]:
        """(folder, all cases, ISIC naming, COCO file)."""
        return (Path(self.folder.text()).expanduser(), self.all_cases.isChecked(),
                self.isic.isChecked(), self.coco.isChecked())
