"""lesionviewer app: mask correction: tools, the editor, undo."""
