"""The case store (Qt-free): cases, analyses, several raters' mask versions, review states and
an append-only audit log, on SQLite (one desk, the default) or PostgreSQL (a team).

Start with :meth:`CaseStore.open`; URLs: :mod:`lesionviewer.store.url`; states and roles:
:mod:`lesionviewer.store.states`; offline writes: :mod:`lesionviewer.store.offline`.

The names below are loaded on first use (PEP 562), so importing a light submodule such as
``lesionviewer.store.states`` does not import SQLAlchemy (about a second on a busy machine).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Agreement": "records", "CaseRecord": "records", "ImportReport": "records",
    "MaskVersion": "records", "QueueRow": "records", "SaveResult": "records",
    "ALLOWED": "states", "LoginMismatch": "states", "PermissionDenied": "states",
    "ReviewError": "states",
    "ReviewState": "states", "Role": "states", "StoreUnavailable": "states",
    "CaseStore": "store", "default_user": "store",
    "redact": "url", "resolve_url": "url",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
