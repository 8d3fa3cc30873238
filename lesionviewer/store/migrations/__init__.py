"""Alembic migrations of the case store, applied by :meth:`lesionviewer.store.CaseStore.open`.

A developer adds one with ``alembic -c lesionviewer/store/migrations/alembic.ini revision -m
"why"`` and writes its upgrade by hand (the same on SQLite and PostgreSQL; SQLite changes
columns through ``op.batch_alter_table``).
"""
