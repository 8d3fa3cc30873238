"""lesionviewer app: work off the GUI thread and the case model: analysis worker, loading, autosave, export, the session."""
