"""The evaluation's malignancy section: figures on the reporting half only, beside baselines."""

from __future__ import annotations

import argparse
import dataclasses
import types

import numpy as np
import pytest

from lesionviewer.training import trust_report
from lesionviewer.training.cases import CaseRecord
from lesionviewer.training.val_halves import CALIBRATION, REPORTING


@dataclasses.dataclass
class Row:
    case: CaseRecord
    half: str
    summary: dict


def _context(rows, split="val"):
    analyzer = types.SimpleNamespace(model=types.SimpleNamespace(config={}))
    return types.SimpleNamespace(analyzer=analyzer, args=argparse.Namespace(seed=0), split=split, results=rows,
                                 lead_method="probe")


def _rows(n, half, rng, perfect):
    rows = []
    for i in range(n):
        y = int(rng.random() < 0.3)
        p = float(y) if perfect else float(rng.random())
        rows.append(Row(CaseRecord(id=f"{half}{i}", image_path=None, mask_path=None, malignant=y), half,
                        {"malignancy_probability": p, "malignancy_range": [max(0, p - 0.1), min(1, p + 0.1)],
                         "malignancy_withheld": None if i % 10 else "mask uncertain (GED 0.40 above 0.20)",
                         "lesion_fraction": 0.05 + 0.3 * y + 0.01 * rng.random()}))
    return rows


def test_figures_come_from_the_reporting_half_beside_the_baselines():
    rng = np.random.default_rng(0)
    # the calibration half is scored at random, the reporting half perfectly: AUROC 1.0 proves
    # the calibration half was left out
    section = trust_report.malignancy_section(_context(_rows(80, CALIBRATION, rng, False) + _rows(60, REPORTING, rng, True)))
    rows = section.rows
    assert rows["model, every case"]["n"] == 60 and rows["model, every case"]["auroc"] == pytest.approx(1.0)
    assert rows["model, every case"]["withheld"] == pytest.approx(0.1)
    assert rows["baseline: prior rate"]["auroc"] == pytest.approx(0.5)
    # size separates the classes in this toy set; its fit used the calibration half only
    assert rows["baseline: lesion size only"]["auroc"] == pytest.approx(1.0)
    assert rows["model, figure shown"]["n"] == 54 and rows["model, figure withheld"]["n"] == 6
    assert rows["model, every case"]["range_width"] == pytest.approx(0.1)  # p is 0 or 1: one side clipped
    assert section.to_dict()["key"] == "malignancy"


def test_on_another_split_every_case_is_reported():
    rng = np.random.default_rng(1)
    rows = _rows(30, CALIBRATION, rng, True) + _rows(30, REPORTING, rng, True)
    section = trust_report.malignancy_section(_context(rows, split="external"))
    assert section.rows["model, every case"]["n"] == 60
    assert "baseline: lesion size only" not in section.rows  # nothing to fit it on
