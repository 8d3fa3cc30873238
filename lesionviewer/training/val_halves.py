"""The two fixed halves of the `val` split: fit on one, report on the other.

Every threshold, cut-off and calibration the product fits on validation data (temperature,
GED cut-offs, the out-of-distribution cut-off, the sample-diversity settings) is fitted on
the *calibration* half; every figure in a model card is measured on the *reporting* half, so
no figure is measured on what it was fitted on. The halves are fixed by the case id alone
(SHA-256 parity), so they do not depend on file order, machine or seed, and a case never
moves between halves when others are added.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, TypeVar

CALIBRATION = "calibration"
REPORTING = "reporting"

T = TypeVar("T")


def val_half(case_id: str) -> str:
    """``"calibration"`` or ``"reporting"`` for one case id, e.g. ``"ISIC_0000000"``."""
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return CALIBRATION if digest[-1] % 2 == 0 else REPORTING


def split_val(items: Iterable[T], key=lambda item: item) -> tuple[list[T], list[T]]:
    """(calibration, reporting) lists, order kept; ``key`` maps an item to its case id."""
    calibration, reporting = [], []
    for item in items:
        (calibration if val_half(key(item)) == CALIBRATION else reporting).append(item)
    return calibration, reporting
