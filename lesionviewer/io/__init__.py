"""Qt-free file handling: photos and masks in, masks/maps/JSON/COCO out, edit sidecars, cache.

Modules: :mod:`~lesionviewer.io.images`, :mod:`~lesionviewer.io.hashing`,
:mod:`~lesionviewer.io.export`, :mod:`~lesionviewer.io.sidecar`, :mod:`~lesionviewer.io.cache`.
"""
