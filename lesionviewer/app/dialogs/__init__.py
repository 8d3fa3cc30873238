"""lesionviewer app: dialogs and the self-test window."""
