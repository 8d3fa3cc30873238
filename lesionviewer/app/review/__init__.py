"""lesionviewer app: team review: the case store's thread, the Review panel, raters' outlines, sign-off lock."""
