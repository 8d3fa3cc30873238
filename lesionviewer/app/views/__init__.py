"""lesionviewer app: the photo, its overlays, the case list and the side panels."""
