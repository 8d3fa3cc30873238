"""The model card explains the heatmap and GED, quotes the fitted cut-offs and the uncertainty
figures per half of `val` against their targets, from the model's own records."""

from __future__ import annotations

from lesionviewer.engine.checkpoint import read_config, save_model
from lesionviewer.engine.model import load_model
from lesionviewer.training.model_card import render


def test_the_card_quotes_the_cutoffs_and_the_figures_against_their_targets(tiny_model_dir, tmp_path):
    model = load_model(tiny_model_dir)
    config = {k: v for k, v in read_config(tiny_model_dir).items()
              if k not in ("weights", "format", "format_version", "config_sha256")}
    config["uncertainty"] = {"views": 1, "member_per_sample": False, "soft": True, "crf_samples": True}
    config["trust"] = {"ged_low": 0.024, "ged_high": 0.2091}
    config["uncertainty_training"] = {
        "command": "lesionviewer train uncertainty --model M --data D",
        "calibration": {"cases": 208, "low_quantile": 0.5, "high_quantile": 0.9,
                        "levels": {"low": {"n": 104, "dice_mean": 0.94}, "medium": {"n": 83, "dice_mean": 0.85},
                                   "high": {"n": 21, "dice_mean": 0.69}}},
    }
    save_model(tmp_path, config, model.state_dict())
    section = {"key": "uncertainty", "title": "Does the uncertainty mark the errors?",
               "columns": [["variance_error_auroc", "Variance→error AUROC"],
                           ["boundary_distance_auroc", "Boundary-distance AUROC (baseline)"]],
               "rows": {"reporting half": {"variance_error_auroc": 0.904, "boundary_distance_auroc": 0.86,
                                           "variance_auroc_margin": 0.044, "spearman_ged_1_minus_dice": 0.674,
                                           "worst10_in_top10_ged": 0.8}},
               "notes": []}
    card = render(tmp_path, {"methods": {}, "sections": [section], "n_cases": 2}, None)
    assert "lesionviewer train uncertainty --model M --data D" in card
    assert "**low** below 0.0240, **medium** up to 0.2091" in card
    assert "| high | 21 | 0.690 |" in card
    assert "| Boundary-distance AUROC (baseline)" in card
    assert "| variance→error AUROC | 0.850 | 0.904 | yes |" in card
    assert "| AUROC margin over boundary distance | 0.050 | 0.044 | no |" in card
    assert "| worst 10 % in GED top 10 % | 0.750 | 0.800 | yes |" in card
    assert "GED from the refined sample masks" in card
