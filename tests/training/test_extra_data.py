"""`train heads` / `train backbone --extra-data`: extra folders of pairs are training data only.

Every pair of an extra folder counts as `train`, whatever its own splits.csv says; a pair that
would bring a real `val` case into training (its photo's bytes, its id, or its synthetic parent)
is left out; the probe's label fractions count real images only and `val` stays the real one."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest

from lesionviewer.cli import main
from lesionviewer.engine.checkpoint import read_config, save_model
from lesionviewer.engine.defaults import default_model_config
from lesionviewer.engine.model import build_model
from lesionviewer.training.cases import read_cases, read_extra_cases

PHOTOS = ("ISIC_0000068", "ISIC_0024311")


def _copy_pair(test_data, photo: str, folder, case_id: str, flip: int | None = None) -> None:
    image = cv2.imread(str(test_data / f"{photo}.jpg"))
    mask = cv2.imread(str(test_data / f"{photo}_mask.png"), cv2.IMREAD_GRAYSCALE)
    if flip is not None:
        image, mask = cv2.flip(image, flip), cv2.flip(mask, flip)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{case_id}.jpg"), image)
    cv2.imwrite(str(folder / f"{case_id}_mask.png"), mask)


@pytest.fixture()
def folders(tmp_path, test_data):
    """real/: 4 train + 1 val pairs; extra_a/ (no splits.csv): 2 good pairs, a photo without a
    mask, a copy of the val photo under a new id, and a pair whose parent is the val case;
    extra_b/ (a splits.csv calling its pair 'val'): 1 good pair and one with the val case's id."""
    real, extra_a, extra_b = tmp_path / "real", tmp_path / "extra_a", tmp_path / "extra_b"
    for k, (photo, flip) in enumerate([(PHOTOS[0], None), (PHOTOS[1], None), (PHOTOS[0], 1), (PHOTOS[1], 1),
                                       (PHOTOS[0], 0)]):
        _copy_pair(test_data, photo, real, f"ISIC_{9100000 + k}", flip)
    (real / "splits.csv").write_text("id,split\n" + "".join(
        f"ISIC_{9100000 + k},{'val' if k == 4 else 'train'}\n" for k in range(5)))
    (real / "labels.csv").write_text("id,diagnosis,malignant\n" + "".join(
        f"ISIC_{9100000 + k},nevus,{k % 2}\n" for k in range(5)))
    _copy_pair(test_data, PHOTOS[1], extra_a, "syn_0", 0)
    _copy_pair(test_data, PHOTOS[0], extra_a, "syn_1", -1)
    _copy_pair(test_data, PHOTOS[1], extra_a, "syn_2", -1)  # parent is the val case
    shutil.copy(real / "ISIC_9100004.jpg", extra_a / "copy_of_val.jpg")
    shutil.copy(real / "ISIC_9100004_mask.png", extra_a / "copy_of_val_mask.png")
    cv2.imwrite(str(extra_a / "no_mask.jpg"), cv2.imread(str(test_data / f"{PHOTOS[0]}.jpg")))
    (extra_a / "labels.csv").write_text("id,synthetic,parent_id\nsyn_0,1,ISIC_9100001\nsyn_1,1,ISIC_9100000\n"
                                        "syn_2,1,ISIC_9100004\n")
    _copy_pair(test_data, PHOTOS[0], extra_b, "syn_0", -1)
    _copy_pair(test_data, PHOTOS[1], extra_b, "ISIC_9100004", -1)
    (extra_b / "splits.csv").write_text("id,split\nsyn_0,val\nISIC_9100004,train\n")
    return real, extra_a, extra_b


def test_extra_pairs_are_train_and_never_val(folders):
    real, extra_a, extra_b = folders
    cases, notes = read_extra_cases([extra_a, extra_b], holdout=read_cases(real, split="val"))
    assert sorted(c.id for c in cases) == ["extra_a/syn_0", "extra_a/syn_1", "extra_b/syn_0"]
    assert {c.split for c in cases} == {"train"} and all(c.mask_path is not None for c in cases)
    assert len(notes) == 2 and "3 of 5" in notes[0] and "1 of 2" in notes[1]


def _tiny_backbone(folder):
    """A 4-level UNet (the heads' block sweep reads dec0..dec3) at 32 px, random weights."""
    config = default_model_config(name="tiny-backbone", working_size=32, base_channels=8)
    save_model(folder, config, build_model(config).state_dict())
    return folder


def test_train_heads_and_backbone_take_extra_data(folders, tmp_path):
    real, extra_a, extra_b = folders
    model = _tiny_backbone(tmp_path / "tiny-backbone")
    assert main(["train", "heads", "--backbone", str(model), "--data", str(real), "--extra-data", str(extra_a),
                 str(extra_b), "--feature-size", "8", "--pixels-per-image", "8", "--members", "1", "--hidden", "4",
                 "--epochs", "1", "--tune-cases", "1", "--timesteps", "60", "--label-efficiency",
                 "--threads", "1"]) == 0
    report = json.loads((model / "heads_report.json").read_text())
    assert report["train_cases"] == 4 and report["val_cases"] == 1
    assert report["extra_data"]["cases"] == 3
    efficiency = {r["fraction"]: r for r in report["label_efficiency"]}
    assert efficiency[0.05]["train_images"] == 1 and efficiency[1.0]["train_images"] == 4
    assert {r["extra_images"] for r in efficiency.values()} == {3}
    assert read_config(model)["heads_training"]["extra_cases"] == 3

    out = tmp_path / "backbone"
    assert main(["train", "backbone", "--data", str(real), "--extra-data", str(extra_a), "--out", str(out),
                 "--size", "32", "--base-channels", "8", "--batch", "2", "--patch-batch", "4", "--patch", "16",
                 "--steps", "1", "--threads", "1"]) == 0
    trained = read_config(out)["backbone_training"]
    assert trained["train_cases"] == 4 and trained["extra_cases"] == 2
