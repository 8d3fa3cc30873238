"""`lesionviewer analyze` with an untrustworthy model folder: one line on stderr, exit 2, no
traceback and no result written (issue 12, item 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lesionviewer.cli import main
from lesionviewer.engine.checkpoint import CONFIG_FILE, config_digest, save_model
from lesionviewer.engine.model import load_model


def sealed(config: dict) -> dict:
    config = {k: v for k, v in config.items() if k != "config_sha256"}
    return config | {"config_sha256": config_digest(config)}


def absurd(model_dir: Path) -> None:
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    config["probe"]["members"] = 10_000_000
    (model_dir / CONFIG_FILE).write_text(json.dumps(sealed(config)))


def edited(model_dir: Path) -> None:
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    config["crf"]["max_side"] = 64 if config["crf"]["max_side"] != 64 else 128
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))


def no_probe(model_dir: Path) -> None:
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    config.update(probe=None, malignancy=None)
    (model_dir / CONFIG_FILE).write_text(json.dumps(sealed(config)))


def nan_weights(model_dir: Path) -> None:
    model = load_model(model_dir)
    config = {k: v for k, v in model.config.items() if k not in ("weights", "config_sha256")}
    save_model(model_dir, config, {k: torch.full_like(v, float("nan")) for k, v in model.state_dict().items()})


@pytest.mark.parametrize(("damage", "message"), [
    (absurd, "probe.members must be an integer from 1 to 64"),
    (edited, "the model's settings were changed after it was made"),
    (no_probe, "needs the probe section"),
    (nan_weights, "are not finite"),
])
def test_analyze_refuses_an_untrustworthy_model_in_one_line(tiny_model_dir, test_data, tmp_path, capsys,
                                                             damage, message):
    model_dir = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    damage(model_dir)
    out = tmp_path / "out"
    code = main(["analyze", str(test_data / "ISIC_0000068.jpg"), "--out", str(out), "--model", str(model_dir),
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lesionviewer analyze: ") and message in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
