"""The app's icon and its About dialog (version, model, licences, where files go)."""

from __future__ import annotations

import functools
import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lesionviewer import __version__
from lesionviewer.bundle import icon_path

ICON_SIZES = (16, 32, 48, 64, 128, 256)
CODE_LICENCE = "Apache-2.0"
MODEL_LICENCE = "CC BY-NC 4.0 (research and non-commercial use; see the model card)"


@functools.cache
def app_icon() -> QIcon:
    """The lesionviewer icon at every size shipped (an empty icon when resources are missing)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path))
    return icon


def about_html(model_name: str | None, model_id: str | None, device: str | None, dirs) -> str:
    if model_name:
        model = f"{html.escape(model_name)} <small>({html.escape(model_id or '')})</small>"
        if device:
            model += f", on {html.escape(device)}"
    else:
        model = "none loaded"
    return (
        f"<h3>lesionviewer {__version__}</h3>"
        "<p>Skin-lesion segmentation with a diffusion model, uncertainty maps and mask "
        "correction, running entirely on this computer (nothing is sent anywhere).</p>"
        "<p><b>Decision support, not a diagnosis.</b> The malignancy probability and masks come "
        "from a model and can be wrong; they do not replace a clinician's examination.</p>"
        f"<p><b>Model:</b> {model}<br>"
        f"<b>Licences:</b> code {CODE_LICENCE}; model weights and sample photo {MODEL_LICENCE}</p>"
        f"<p><small>Settings: {html.escape(str(dirs.config))}<br>"
        f"Cache: {html.escape(str(dirs.cache))}<br>Log: {html.escape(str(dirs.log))}</small></p>")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None, text: str):
        super().__init__(parent)
        self.setWindowTitle("About lesionviewer")
        icon = QLabel()
        icon.setPixmap(QPixmap(str(icon_path(128))))
        icon.setAlignment(Qt.AlignTop)
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.text.setMinimumWidth(420)
        row = QHBoxLayout()
        row.addWidget(icon)
        row.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(buttons)
