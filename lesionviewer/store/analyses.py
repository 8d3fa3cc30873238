"""From lesionviewer's analysis record (Analysis.report() / analyze's JSON) to table values."""

from __future__ import annotations

import math
from typing import Any

from lesionviewer.io.atomic import to_json_ready


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def analysis_values(summary: dict) -> dict[str, Any]:
    """The ``analyses`` columns of one record; the whole record goes into ``summary``. A
    withheld malignancy is stored as None (with its reason), as the report writes it."""
    if not isinstance(summary, dict):
        raise TypeError("an analysis summary is a dict (Analysis.report())")
    record = to_json_ready(summary)
    withheld = record.get("malignancy_withheld")
    span = record.get("malignancy_range")
    low = high = None
    if isinstance(span, (list, tuple)) and len(span) == 2:
        low, high = _number(span[0]), _number(span[1])
    ood = record.get("ood")
    settings = record.get("settings")
    return {
        "model_id": None if record.get("model_id") is None else str(record["model_id"])[:200],
        "settings": settings if isinstance(settings, dict) else None,
        "ged": _number(record.get("ged")),
        "ged_level": record.get("ged_level"),
        "malignancy": None if withheld else _number(record.get("malignancy_probability")),
        "malignancy_low": None if withheld else low,
        "malignancy_high": None if withheld else high,
        "withheld_reason": str(withheld) if withheld else None,
        "ood": None if ood is None else bool(ood),
        "ood_score": _number(record.get("ood_score")),
        "maps_uri": record.get("maps_uri"),
        "summary": record,
    }


def uncertainty_key(values: dict[str, Any]) -> float:
    """The review queue's sort key (highest first): 1 + GED when the model distrusts its own
    result (malignancy withheld, or an out-of-distribution photo), GED otherwise; -1 without
    a GED. The same order as the app's case list."""
    ged = values.get("ged")
    distrusted = bool(values.get("withheld_reason")) or values.get("ood") is True
    if ged is None:
        return 1.0 if distrusted else -1.0
    return ged + (1.0 if distrusted else 0.0)
