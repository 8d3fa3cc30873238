"""Archive-scale analysis on a Ray cluster: ``lesionviewer analyze PATH... --out DIR --ray``.

Imported only by the command line (an import-linter contract keeps app/, io/, edit/, engine/
and training/ away from it). Ray itself is an optional extra (``pip install -e ".[cluster]"``)
and is imported only by :mod:`lesionviewer.cluster.driver`, so the default ``analyze`` path and
this package's plain modules (stages, resume, writer) work without it.

The pipeline (Ray Data): list the photos on the driver -> read, hash and decode them in tasks
-> ``map_batches`` over an actor pool of Analyzers (the model loaded once per actor) -> encoded
results stream back to the driver, whose :class:`~lesionviewer.cluster.writer.ResultWriter`
writes them exactly as the single-process ``analyze`` does.
"""

from __future__ import annotations

RAY_MISSING = ("--ray needs Ray, which is not installed: pip install 'lesionviewer[cluster]' "
               "(or pip install 'ray[data]>=2.9')")


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def run(args) -> int:
    """Run ``analyze`` with ``--ray``; a one-line message and exit code 2 without Ray."""
    import sys

    if not ray_available():
        print(f"lesionviewer analyze: {RAY_MISSING}", file=sys.stderr)
        return 2
    from lesionviewer.cluster.driver import run_on_ray

    return run_on_ray(args)
