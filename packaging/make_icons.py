"""Render resources/icons/lesionviewer.svg to the PNG sizes and the Windows .ico.

The PNGs and the .ico are committed; rerun this after editing the SVG:
    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(svg: Path, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
    image.fill(Qt.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def main() -> int:
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage needs it)
    svg = ICONS / "lesionviewer.svg"
    for size in SIZES:
        (ICONS / f"lesionviewer-{size}.png").write_bytes(render(svg, size))
    big = Image.open(io.BytesIO(render(svg, 256)))
    big.save(ICONS / "lesionviewer.ico", sizes=[(s, s) for s in ICO_SIZES])
    print(f"wrote {len(SIZES)} PNGs and lesionviewer.ico to {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
