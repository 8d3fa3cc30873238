"""Qt-free mask editing: the mask document (brush, eraser, polygon, fills), undo deltas,
a memory-capped history and the edit summary that goes into exports.

Modules: :mod:`~lesionviewer.edit.mask_document`, :mod:`~lesionviewer.edit.history`,
:mod:`~lesionviewer.edit.summary`.
"""
