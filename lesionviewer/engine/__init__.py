"""The analysis engine: torch + numpy only (no Qt, no training code).

Public face: :class:`Analyzer` (numpy image in, :class:`Analysis` out).
"""

from lesionviewer.engine.analysis import (
    Analysis,
    AnalysisCancelled,
    AnalysisSettings,
    Method,
    Progress,
    SkinTone,
)

__all__ = [
    "Analysis",
    "AnalysisCancelled",
    "AnalysisSettings",
    "Analyzer",
    "Method",
    "Progress",
    "SkinTone",
]


def __getattr__(name):  # lazy: importing the types must not import torch
    if name == "Analyzer":
        from lesionviewer.engine.pipeline import Analyzer

        return Analyzer
    raise AttributeError(name)
