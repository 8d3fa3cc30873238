"""`lesionviewer evaluate-synth`: KID behaves as a distance, the realism / fidelity / label-fraction
harness runs end to end on a tiny drawn data set, and its report lands in the card's section."""

from __future__ import annotations

import json

import cv2
import numpy as np

from lesionviewer.cli import main
from lesionviewer.training.synth.eval_report import replace_section
from lesionviewer.training.synth.kid import frechet_distance, kid


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 32)), rng.normal(size=(200, 32))
    near, shifted, far = kid(a, b)["kid"], kid(a, b + 0.5)["kid"], kid(a, b + 1.5)["kid"]
    assert abs(near) < 0.01 < shifted < far
    assert abs(frechet_distance(a, a)) < 1e-9 < frechet_distance(a, b) < frechet_distance(a, b + 0.5)


def _draw_pairs(folder, n: int, seed: int, *, ids: list[str] | None = None, extra_rows=None, side: int = 48) -> list[str]:
    """n dermoscopy-like pairs (side x side): a skin-coloured, shaded field with a dark brown ellipse."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = ids or [f"case_{seed}_{i:03d}" for i in range(n)]
    for case_id in ids:
        skin = np.array([150, 170, 215]) + rng.integers(-25, 25, 3)  # BGR
        image = np.tile(skin, (side, side, 1)).astype(np.float64) + np.linspace(-20, 20, side)[None, :, None]
        mask = np.zeros((side, side), np.uint8)
        center = tuple(int(v) for v in rng.integers(side // 3, 2 * side // 3, 2))
        axes = tuple(int(v) for v in rng.integers(side // 8, side // 3, 2))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        image[mask > 0] = np.array([40, 55, 90]) + rng.integers(-15, 15, 3)
        image += rng.normal(0, 6, image.shape)
        cv2.imwrite(str(folder / f"{case_id}.jpg"), np.clip(image, 0, 255).astype(np.uint8))
        cv2.imwrite(str(folder / f"{case_id}_mask.png"), mask)
    if extra_rows is not None:
        (folder / "labels.csv").write_text("id,synthetic,tone,mask_origin,parent_id\n"
                                           + "".join(extra_rows(case_id) for case_id in ids))
    return ids


def test_evaluate_synth_on_a_tiny_set(tmp_path, tiny_model_dir):
    real = tmp_path / "real"
    train_ids = _draw_pairs(real, 12, seed=1)
    val_ids = _draw_pairs(real, 6, seed=2)
    (real / "splits.csv").write_text("id,split\n" + "".join(f"{i},train\n" for i in train_ids)
                                     + "".join(f"{i},val\n" for i in val_ids))
    parent = iter(train_ids[:7] + [val_ids[0]])  # the last pair comes from a val mask: left out
    _draw_pairs(tmp_path / "full", 8, seed=3, extra_rows=lambda i: f"{i},1,light,deformed,{next(parent)}\n", side=40)
    _draw_pairs(tmp_path / "ablation", 7, seed=4, extra_rows=lambda i: f"{i},1,tan,real,\n", side=40)
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\n## Measurements\n\nto be measured\n\n## Limitations\n\nkept\n")
    out = tmp_path / "evaluation"
    assert main(["evaluate-synth", "--data", str(real), "--synthetic", str(tmp_path / "full"),
                 "--ablation", str(tmp_path / "ablation"), "--model", str(tiny_model_dir), "--out", str(out),
                 "--card", str(card), "--cache", str(tmp_path / "cache"), "--fidelity-n", "4",
                 "--fractions", "0.25", "1.0", "--timesteps", "60", "--pixels-per-image", "16", "--members", "1",
                 "--epochs", "1", "--repeats", "2", "--min-steps", "1", "--threads", "1"]) == 0
    report = json.loads((out / "report.json").read_text())

    realism = {r["set"]: r for r in report["realism"]["rows"]}
    assert report["realism"]["n"] == 6 and realism["synthetic (full)"]["n"] == 6
    assert {"real train (floor)", "synthetic (ablation)", "trivial: shuffled pixels"} <= set(realism)

    fidelity = {r["set"]: r for r in report["fidelity"]["rows"]}
    assert fidelity["real val (ceiling)"]["n"] == 4 and 0 <= fidelity["synthetic (full)"]["dice"] <= 1
    assert fidelity["real val at 40 px (ceiling)"]["n"] == 4  # the ceiling again at the synthetic photos' size
    assert 0 <= fidelity["synthetic (ablation)"]["tone_agreement"] <= 1

    rows = report["probe"]["rows"]
    assert [(r["fraction"], r["arm"]) for r in rows] == [
        (f, arm) for f in (0.25, 1.0) for arm in ("real", "synthetic (full)", "synthetic (ablation)")]
    assert [r["train_images"] for r in rows[::3]] == [3, 12]
    assert len(rows[1]["gain_per_seed"]) == 2 and len(rows[4]["gain_per_seed"]) == 1  # all of train: one seed
    assert rows[0]["epochs"][0] > rows[1]["epochs"][0]  # fewer rows, more epochs: the same number of steps
    assert rows[1]["synthetic_images"] == 7 and rows[2]["synthetic_images"] == 7  # val-parented pair left out
    assert all(sum(g["n"] for g in r["per_group"].values()) == 6 for r in rows)  # scored on all of val
    gain = rows[4]["dice"] - rows[3]["dice"]
    assert abs(rows[4]["gain"] - gain) < 1e-3 and rows[4]["gain_interval"][0] <= rows[4]["gain"] + 1e-3
    assert report["decision"]["shipped"] is False

    text = card.read_text()
    assert "to be measured" not in text and "## Limitations\n\nkept" in text
    assert "### Realism: KID against real `val`" in text and "evaluate-synth --data" in text

    # a second run of one part reuses the cache and keeps the other parts
    assert main(["evaluate-synth", "--data", str(real), "--synthetic", str(tmp_path / "full"),
                 "--ablation", str(tmp_path / "ablation"), "--model", str(tiny_model_dir), "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--parts", "realism", "--threads", "1"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["realism"] == report["realism"] and again["probe"] == report["probe"]


def test_measurements_section_is_appended_when_the_card_has_none(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card\n\n## Intended use\n\nresearch\n")
    replace_section(card, "## Measurements\n\nfigures\n")
    assert card.read_text() == "# Model card\n\n## Intended use\n\nresearch\n\n## Measurements\n\nfigures\n"
