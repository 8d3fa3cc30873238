"""Save the whole X screen ($DISPLAY, e.g. an Xvfb) as a PNG, with Qt: no ImageMagick needed.

    DISPLAY=:99 python packaging/grab_screen.py out.png
"""

import os
import sys

os.environ["QT_QPA_PLATFORM"] = "xcb"
from PySide6.QtGui import QGuiApplication  # noqa: E402

app = QGuiApplication(sys.argv[:1])
picture = app.primaryScreen().grabWindow(0)
if picture.isNull() or not picture.save(sys.argv[1], "PNG"):
    sys.exit(f"could not grab the screen of {os.environ.get('DISPLAY')}")
print(f"{sys.argv[1]}: {picture.width()}x{picture.height()}")
