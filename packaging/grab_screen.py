"""Save the X screen ($DISPLAY, e.g. an Xvfb) as a PNG, with Qt (no ImageMagick needed),
cropped to what is drawn (Xvfb without a window manager leaves the rest black).

    DISPLAY=:99 python packaging/grab_screen.py out.png
"""

import os
import sys

import numpy as np

os.environ["QT_QPA_PLATFORM"] = "xcb"
from PySide6.QtGui import QGuiApplication, QImage  # noqa: E402

app = QGuiApplication(sys.argv[:1])
picture = app.primaryScreen().grabWindow(0)
if picture.isNull():
    sys.exit(f"could not grab the screen of {os.environ.get('DISPLAY')}")
image = picture.toImage().convertToFormat(QImage.Format_RGB32)
pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
pixels = pixels[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3]
drawn = pixels.any(axis=2)
if drawn.any():
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    image = image.copy(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))
if not image.save(sys.argv[1], "PNG"):
    sys.exit(f"could not write {sys.argv[1]}")
print(f"{sys.argv[1]}: {image.width()}x{image.height()}")
