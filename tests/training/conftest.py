"""Fixtures shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest


@pytest.fixture(scope="session")
def write_test_pairs(test_data):
    """Factory writing a tiny data set in the shared format from the two test photos:
    ``write_test_pairs(root, rows)`` with rows of (case_id, test photo id, cv2.flip code or
    None, split, malignant 0/1) gives ``root/ID.jpg``, ``ID_mask.png``, ``labels.csv`` and
    ``splits.csv``; returns root."""

    def write(root: Path, rows) -> Path:
        labels, splits = ["id,source,diagnosis,malignant,label_source"], ["id,split"]
        for case_id, photo, flip, split, malignant in rows:
            image = cv2.imread(str(test_data / f"{photo}.jpg"))
            mask = cv2.imread(str(test_data / f"{photo}_mask.png"), cv2.IMREAD_GRAYSCALE)
            if flip is not None:
                image, mask = cv2.flip(image, flip), cv2.flip(mask, flip)
            cv2.imwrite(str(root / f"{case_id}.jpg"), image)
            cv2.imwrite(str(root / f"{case_id}_mask.png"), mask)
            labels.append(f"{case_id},test,{'melanoma' if malignant else 'nevus'},{malignant},test")
            splits.append(f"{case_id},{split}")
        (root / "labels.csv").write_text("\n".join(labels) + "\n")
        (root / "splits.csv").write_text("\n".join(splits) + "\n")
        return root

    return write
