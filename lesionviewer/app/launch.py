"""`lesionviewer [gui] [PATHS]`: argument parsing for the desktop app (the CLI's default)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", help="images or folders to open")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--db", default=None, metavar="URL",
                   help="case store URL (default: $LESIONVIEWER_DB, the settings, or the SQLite "
                        "file in the user data folder); e.g. postgresql://user@host/lesionviewer")


def run(args: argparse.Namespace) -> int:
    from lesionviewer.app import main

    return main(list(args.paths), model_dir=args.model, device=args.device,
                db_url=getattr(args, "db", None))
