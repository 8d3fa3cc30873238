"""What the clinician changed, in numbers that go into the export sidecar and the status bar."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lesionviewer.edit.mask_document import MaskDelta


@dataclasses.dataclass
class EditSummary:
    """Running totals over the edits currently applied (undo takes them back out).

    strokes: number of applied operations per tool label, e.g. {"brush": 3, "eraser": 1}.
    pixels_added / pixels_removed: sums of each applied delta's own counts; painting a pixel
    and erasing it again counts once in each. For the net change against the model's mask
    use :func:`mask_difference`.
    """

    strokes: dict[str, int] = dataclasses.field(default_factory=dict)
    pixels_added: int = 0
    pixels_removed: int = 0

    def record(self, delta: MaskDelta | None) -> None:
        """Count a delta that was just applied (a new edit, or a redo)."""
        if delta is None:
            return
        self.strokes[delta.label] = self.strokes.get(delta.label, 0) + 1
        self.pixels_added += delta.pixels_added
        self.pixels_removed += delta.pixels_removed

    def revert(self, delta: MaskDelta | None) -> None:
        """Take back a delta that was just undone."""
        if delta is None:
            return
        left = self.strokes.get(delta.label, 0) - 1
        if left > 0:
            self.strokes[delta.label] = left
        else:
            self.strokes.pop(delta.label, None)
        self.pixels_added = max(0, self.pixels_added - delta.pixels_added)
        self.pixels_removed = max(0, self.pixels_removed - delta.pixels_removed)

    @property
    def edited(self) -> bool:
        """True when any edit is currently applied."""
        return bool(self.strokes)

    @property
    def total_strokes(self) -> int:
        return sum(self.strokes.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"strokes": {tool: n}, "total_strokes", "pixels_added", "pixels_removed", "edited"}."""
        return {
            "strokes": dict(sorted(self.strokes.items())),
            "total_strokes": self.total_strokes,
            "pixels_added": int(self.pixels_added),
            "pixels_removed": int(self.pixels_removed),
            "edited": self.edited,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EditSummary:
        """Inverse of :meth:`to_dict`; tolerates missing keys (an older sidecar)."""
        data = data or {}
        strokes = {str(k): int(v) for k, v in dict(data.get("strokes") or {}).items() if int(v) > 0}
        return cls(strokes, int(data.get("pixels_added", 0)), int(data.get("pixels_removed", 0)))


def mask_difference(model_mask: np.ndarray, edited_mask: np.ndarray) -> dict[str, int]:
    """Net change of an edited mask against the model's (both HxW bool, same shape).

    Returns {"pixels_added_vs_model", "pixels_removed_vs_model", "lesion_pixels"}.
    """
    model_mask = np.asarray(model_mask, dtype=bool)
    edited_mask = np.asarray(edited_mask, dtype=bool)
    if model_mask.shape != edited_mask.shape:
        raise ValueError(f"masks differ in shape: {model_mask.shape} vs {edited_mask.shape}")
    return {
        "pixels_added_vs_model": int(np.count_nonzero(edited_mask & ~model_mask)),
        "pixels_removed_vs_model": int(np.count_nonzero(model_mask & ~edited_mask)),
        "lesion_pixels": int(np.count_nonzero(edited_mask)),
    }
