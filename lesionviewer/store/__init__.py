"""The case store (Qt-free): cases, analyses, several raters' mask versions, review states and
an append-only audit log, on SQLite (one desk, the default) or PostgreSQL (a team).

Start with :meth:`CaseStore.open`; URLs: :mod:`lesionviewer.store.url`; states and roles:
:mod:`lesionviewer.store.states`; offline writes: :mod:`lesionviewer.store.offline`.
"""

from lesionviewer.store.records import (Agreement, CaseRecord, ImportReport, MaskVersion,
                                        QueueRow, SaveResult)
from lesionviewer.store.states import (ALLOWED, PermissionDenied, ReviewError, ReviewState, Role,
                                       StoreUnavailable)
from lesionviewer.store.store import CaseStore, default_user
from lesionviewer.store.url import redact, resolve_url

__all__ = ["ALLOWED", "Agreement", "CaseRecord", "CaseStore", "ImportReport", "MaskVersion",
           "PermissionDenied", "QueueRow", "ReviewError", "ReviewState", "Role", "SaveResult",
           "StoreUnavailable", "default_user", "redact", "resolve_url"]
