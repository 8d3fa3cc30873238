"""Entry point of the PyInstaller bundle: the same `lesionviewer` command as the pip install."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen Windows build re-enters here in child processes
    from lesionviewer.cli import main

    sys.exit(main())
