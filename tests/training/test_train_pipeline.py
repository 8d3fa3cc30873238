"""CI-sized end to end: train a tiny backbone and heads for a few steps on a handful of real
images, then evaluate them, all through the `lesionviewer` command."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest

from lesionviewer.cli import main
from lesionviewer.engine.checkpoint import read_config, sha256_file
from lesionviewer.engine.pipeline import Analyzer

CASES = ("ISIC_0000068", "ISIC_0024311")


@pytest.fixture(scope="module")
def mini_dataset(tmp_path_factory, write_test_pairs):
    """Six train and two val cases in the shared data format, made from the two test photos
    (originals, mirrored and flipped copies), with one malignant label per split."""
    variants = [(variant, flip, case) for variant, flip in (("", None), ("m", 1), ("f", 0), ("v", None))
                for case in CASES]
    return write_test_pairs(tmp_path_factory.mktemp("mini-isic"),
                            [(f"ISIC_{9000000 + k:07d}", case, flip, "val" if variant == "v" else "train", k % 2)
                             for k, (variant, flip, case) in enumerate(variants)])


@pytest.mark.slow
def test_train_backbone_heads_and_evaluate(mini_dataset, tmp_path, capsys):
    model_dir = tmp_path / "models" / "tiny-trained"
    assert main(["train", "backbone", "--data", str(mini_dataset), "--out", str(model_dir), "--size", "32",
                 "--base-channels", "8", "--batch", "2", "--patch-batch", "4", "--patch", "16", "--steps", "3",
                 "--threads", "1"]) == 0
    backbone = read_config(model_dir)
    assert backbone["backbone_training"]["steps"] == 3
    assert backbone["probe"] is None and backbone["defaults"]["method"] == "diffseg"

    # resuming continues the step count instead of starting over
    assert main(["train", "backbone", "--data", str(mini_dataset), "--out", str(model_dir), "--size", "32",
                 "--base-channels", "8", "--batch", "2", "--patch-batch", "4", "--patch", "16", "--steps", "5",
                 "--threads", "1", "--resume"]) == 0
    assert read_config(model_dir)["backbone_training"]["steps"] == 5

    assert main(["train", "heads", "--backbone", str(model_dir), "--data", str(mini_dataset),
                 "--feature-size", "16", "--pixels-per-image", "32", "--members", "2", "--hidden", "8",
                 "--epochs", "1", "--tune-cases", "2", "--timesteps", "60", "150", "--label-efficiency",
                 "--threads", "1"]) == 0
    config = read_config(model_dir)
    assert config["probe"]["members"] == 2 and config["malignancy"] is not None
    assert config["weights"]["sha256"] == sha256_file(model_dir / "model.safetensors")
    report = json.loads((model_dir / "heads_report.json").read_text())
    assert {r["fraction"] for r in report["label_efficiency"]} == {0.05, 0.1, 0.2, 1.0}
    assert len(report["block_sweep"]) >= 3 and report["chosen"]["method"] in ("diffseg", "probe", "fused")

    analyzer = Analyzer.from_dir(model_dir, device="cpu")
    image = cv2.imread(str(mini_dataset / "ISIC_9000000.jpg"))[..., ::-1].copy()
    result = analyzer.analyze(image)
    assert result.consensus_mask.shape == image.shape[:2]
    assert result.malignancy_probability is not None and 0.0 <= result.malignancy_probability <= 1.0

    out = tmp_path / "report.json"
    assert main(["evaluate", "--data", str(mini_dataset), "--split", "val", "--model", str(model_dir),
                 "--out", str(out), "--no-crf"]) == 0
    evaluation = json.loads(out.read_text())
    assert evaluation["default_method"] == config["defaults"]["method"]
    for name in ("diffseg", "probe"):
        figures = evaluation["methods"][name]
        assert figures["n"] == 2
        assert 0.0 <= figures["dice_mean"] <= 1.0
        assert len(figures["per_image"]) == 2
    assert out.with_suffix(".md").is_file()
    shutil.rmtree(model_dir)
