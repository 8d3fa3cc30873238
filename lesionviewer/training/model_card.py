"""`lesionviewer train card`: MODEL_CARD.md written from the model's own records.

Sources: config.json (architecture, training runs, commands, SHA-256), heads_report.json (the
sweeps on `val`), an evaluation JSON from `lesionviewer evaluate`, and optionally the output of
benchmarks/analyze_latency.py. Nothing is typed in by hand, so the card stays true.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesionviewer.engine.checkpoint import read_config, sha256_file
from lesionviewer.engine.model import load_model

COLUMNS = (("n", "n"), ("Dice", "dice_mean"), ("IoU", "iou_mean"), ("precision", "precision_mean"),
           ("recall", "recall_mean"), ("thr. Jaccard", "thresholded_jaccard"), ("HD95 px", "hd95_mean"),
           ("GED vs ref", "ged_mean"), ("var. AUROC", "uncertainty_error_auroc"),
           ("malig. AUROC", "malignancy_auroc"), ("sens@90spec", "malignancy_sens_at_90spec"),
           ("ECE", "malignancy_ece"), ("s/image", "seconds_per_image"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--evaluation", required=True, help="report.json from `lesionviewer evaluate`")
    p.add_argument("--benchmark", help="text printed by benchmarks/analyze_latency.py")


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(model_dir: Path, evaluation: dict, benchmark: str | None) -> str:
    config = read_config(model_dir)
    heads = json.loads((model_dir / "heads_report.json").read_text()) if (model_dir / "heads_report.json").is_file() else {}
    model = load_model(model_dir)
    params = sum(p.numel() for p in model.unet.parameters())
    size_mb = (model_dir / "model.safetensors").stat().st_size / 1e6
    bb = config.get("backbone_training", {})
    hd = config.get("heads_training", {})
    d = config["defaults"]
    methods = evaluation.get("methods", {})
    default = evaluation.get("default_method")
    out = [f"# Model card: {config['name']}", "",
           f"- **Model id:** `{model.model_id}`",
           f"- **Weights:** `model.safetensors`, {size_mb:.1f} MB, SHA-256 `{sha256_file(model_dir / 'model.safetensors')}` "
           "(checked by lesionviewer at every load)",
           f"- **Default analysis:** method `{d['method']}`, {d['samples']} samples at t in "
           f"{d['timestep_range'][0]}..{d['timestep_range'][1]}, DenseCRF {'on' if d['crf'] else 'off'}"
           + design_phrase(config),
           "", "## Intended use", "",
           "Decision support for dermatologists reviewing dermoscopy images of pigmented skin lesions, and "
           "pre-segmentation for annotators who correct masks. **It is not a diagnosis** and must not be used "
           "to rule a lesion in or out without a clinician. Research and non-commercial use only (the training "
           "data is CC BY-NC 4.0).", "",
           "## Training data", "",
           f"ISIC 2018 Task 1 training images with expert lesion masks and ISIC 2017 diagnoses "
           f"(`../shared/data/isic-train`, 256x256), split by the fixed `splits.csv`: "
           f"{bb.get('train_cases', '?')} `train` images for all training, `val` ({heads.get('val_cases', '?')} images) "
           "for every choice below and for the figures. Licence: treat as CC BY-NC 4.0. Cite Codella et al. 2019 "
           "(arXiv:1902.03368) and Tschandl et al. 2018 (HAM10000, doi:10.1038/sdata.2018.161).", "",
           "In the backbone the expert masks are used only to label patches at the working scale as lesion "
           "(>= 30 % lesion pixels) or healthy skin (no lesion pixel); whole images carry the lesion label, with "
           "null-label dropout. The probe and the malignancy head are trained on the frozen backbone.", "",
           "## Architecture", "",
           f"Class-conditional denoising UNet, {params / 1e6:.2f} M parameters, working resolution "
           f"{config['working_size']}x{config['working_size']}, channels {config['unet']['base_channels']} x "
           f"{config['unet']['channel_mult']}, {config['schedule']['kind']} schedule with "
           f"{config['schedule']['num_timesteps']} steps; labels healthy / lesion / null. "
           f"Probe: {config['probe']['members'] if config.get('probe') else 0} per-pixel MLPs on decoder blocks "
           f"{config['probe']['blocks'] if config.get('probe') else []} (+RGB) at "
           f"{config['probe']['feature_size'] if config.get('probe') else '-'}^2. Malignancy head: the mean and spread of the features "
           "inside the lesion and its area, temperature-scaled on `val`.", "",
           "## How it was made", "", "```bash"]
    out += bb.get("commands") or ["# backbone command not recorded in config.json"]
    out += [hd.get("command", "# heads command not recorded")]
    if config.get("uncertainty_training", {}).get("command"):
        out += [config["uncertainty_training"]["command"]]
    if config.get("trust_training", {}).get("command"):
        out += [config["trust_training"]["command"]]
    out += [
            f"lesionviewer evaluate --data ../shared/data/isic-train --split val --model {model_dir} --out <report.json>",
            f"lesionviewer train card --model {model_dir} --evaluation <report.json> [--benchmark <bench.txt>]", "```", "",
            f"Backbone: {bb.get('steps')} steps of {bb.get('batch')} whole images + {bb.get('patch_batch')} patches, "
            f"{bb.get('minutes')} min on {bb.get('device')} ({bb.get('hardware', '').strip()}, "
            f"{bb.get('torch_threads')} threads), AdamW lr {bb.get('lr')}, EMA {bb.get('ema')}, seed {bb.get('seed')}. "
            f"Heads and tuning: {hd.get('minutes')} min on {hd.get('device')}, label fraction {hd.get('label_fraction')}.", ""]
    if heads:
        out += ["## Choices made on `val`", "", "Decoder blocks (single-member probe, 1 epoch, no CRF, Dice at the working resolution):", "",
                _table(["blocks", "val Dice", "Dice per t " + str(heads.get("timesteps"))],
                       [["+".join(r["blocks"]), r["val_dice_no_crf"], r["per_timestep"]] for r in heads.get("block_sweep", [])]), ""]
        if heads.get("label_efficiency"):
            out += ["Label efficiency (probe ensemble trained on a share of `train`, no CRF):", "",
                    _table(["label fraction", "train images", "val Dice"],
                           [[r["fraction"], r["train_images"], r["val_dice_no_crf"]] for r in heads["label_efficiency"]]), ""]
        ds = sorted(heads.get("diffseg_sweep", []), key=lambda r: -r["val_dice_no_crf"])[:5]
        best_per_stat = {}
        for r in sorted(heads.get("diffseg_sweep", []), key=lambda r: -r["val_dice_no_crf"]):
            best_per_stat.setdefault(r.get("statistic", "abs_difference"), r)
        out += ["DiffSeg statistic, smoothing and threshold (best five, then the best of each statistic; "
                "threshold null = Otsu; no CRF). `abs_difference` is the published |eps(lesion) - eps(healthy)|; "
                "`error_difference` is the per-pixel denoising-error difference between the labels:", "",
                _table(["statistic", "sigma", "theta (n/a = Otsu)", "FOV margin", "closing", "largest only", "hull", "val Dice"],
                       [[r.get("statistic"), r["smoothing_sigma"], r["threshold"], r.get("fov_margin"), r.get("closing"),
                         r.get("largest_only"), r.get("hull"), r["val_dice_no_crf"]]
                        for r in ds + list(best_per_stat.values())]), "",
                f"CRF and default method (the Analyzer end to end on {min(heads.get('val_cases', 0), 100)} `val` cases):", "",
                _table(["stage", "method", "setting", "val Dice", "s/image"],
                       [[r["stage"], r["method"], r.get("crf") if r["stage"] == "crf" else f"fusion {r.get('fusion_weight')}",
                         r["val_dice"], r["seconds_per_image"]] for r in heads.get("method_sweep", [])]), ""]
    out += [f"## Figures on `val` ({evaluation.get('n_cases')} images, `lesionviewer evaluate`)", "",
            "The full report, per image, with the best, median and worst cases pictured, is in "
            "`evaluation/report.md` and `evaluation/report.json` beside this card.", "",
            _table(["method"] + [c for c, _ in COLUMNS],
                   [[name + (" (default)" if name == default else "")] + [figures.get(k) for _, k in COLUMNS]
                    for name, figures in methods.items()]), ""]
    if default in methods:
        f = methods[default]
        targets = (("Dice", "dice_mean", 0.87, "DiffSeg reports 0.864"), ("precision", "precision_mean", 0.90, "DiffSeg reports 0.897"),
                   ("malignancy AUROC", "malignancy_auroc", 0.85, ""))
        out += ["Against the project's targets for the default method on `val`:", "",
                _table(["figure", "target", "reached", "met", "note"],
                       [[name, target, f.get(key), "yes" if (f.get(key) or 0) >= target else "no", note]
                        for name, key, target, note in targets]), ""]
        groups = methods[default].get("per_group", {})
        out += [f"Per ITA skin-tone group (default method `{default}`):", "",
                _table(["group", "n", "Dice", "precision", "malig. AUROC"],
                       [[g, f.get("n"), f.get("dice_mean"), f.get("precision_mean"), f.get("malignancy_auroc")] for g, f in groups.items()]), ""]
    out += uncertainty_lines(config, evaluation)
    out += trust_card_lines(config, evaluation)
    if benchmark:
        out += ["## Speed", "", "Seconds per image on this CPU for the default analysis (all samples, CRF on), and peak "
                "memory, from `benchmarks/analyze_latency.py`:", "", "```", benchmark.strip(), "```", ""]
    out += ["## Limitations", "",
            "- Trained and measured on dermoscopy images only; smartphone photos are out of distribution "
            "(draw a box around the lesion so the analysis runs at the model's scale).",
            "- Darker skin tones are badly under-represented in ISIC (see the per-group table: groups with few "
            "images have unreliable figures); do not assume the figures transfer.",
            "- Malignancy labels are melanoma vs nevus / seborrheic keratosis (ISIC 2017); other malignancies "
            "(basal or squamous cell carcinoma) were never seen.",
            f"- The image is analysed at {config['working_size']}x{config['working_size']}; DenseCRF at a "
            "display-sized resolution restores edges, but fine borders of large photos are approximate.",
            "- The sampling design and the GED cut-offs were chosen on the calibration half of `val` and the "
            "uncertainty figures are measured on its reporting half; the probe, DiffSeg, CRF and default-method "
            "choices listed above were made on the whole of `val`, so the Dice figures are slightly optimistic.",
            "- Trained on a 2-core CPU within a session's time; see the issue notes for what more compute would buy.", ""]
    return "\n".join(out)


def trust_card_lines(config: dict, evaluation: dict) -> list[str]:
    from lesionviewer.training.trust_report import card_lines

    return card_lines(config, evaluation)


def design_phrase(config: dict) -> str:
    section = config.get("uncertainty") or {}
    if not section.get("soft"):
        return ", applied to every sample (consensus = share of votes)"
    views = int(section.get("views", 1))
    differ = ("; samples differ in noise and timestep"
              + (", in the probe ensemble member that reads them" if section.get("member_per_sample") else "")
              + (f" and in {views} flipped views of the photo" if views > 1 else ""))
    if section.get("crf_samples"):
        return (", applied to every soft sample (consensus = mean of their DenseCRF marginals, continuous); variance "
                "heatmap from the unrefined soft samples; GED from the refined sample masks" + differ)
    return ", applied once, to the soft consensus; GED and the variance heatmap taken before refinement" + differ


UNCERTAINTY_TARGETS = (("variance→error AUROC", "variance_error_auroc", 0.85),
                       ("AUROC margin over boundary distance", "variance_auroc_margin", 0.05),
                       ("Spearman(GED, 1−Dice)", "spearman_ged_1_minus_dice", 0.75),
                       ("worst 10 % in GED top 10 %", "worst10_in_top10_ged", 0.75))


def uncertainty_lines(config: dict, evaluation: dict) -> list[str]:
    """The card's uncertainty section: what the heatmap and GED are, the fitted cut-offs, and
    the evaluation's uncertainty figures per half of `val` with their baselines."""
    trust = config.get("trust") or {}
    fit = (config.get("uncertainty_training") or {}).get("calibration") or {}
    section = next((sec for sec in evaluation.get("sections", []) if sec.get("key") == "uncertainty"), None)
    if not trust and section is None:
        return []
    out = ["## Uncertainty: what the heatmap and GED mean", "",
           "The **variance heatmap** is the predictive variance p(1 − p) of the lesion label under the soft samples "
           "(p = their mean probability): what each sample is unsure of plus where they disagree, 0 (certain) to "
           "0.25, and 0.25 where DenseCRF overrode the samples' majority. **GED** is the mean pairwise 1 − IoU "
           f"of the sample masks ({'after' if (config.get('uncertainty') or {}).get('crf_samples') else 'before'} "
           "DenseCRF): how much the samples disagree about *the mask* (not about the diagnosis).", ""]
    if "ged_low" in trust:
        out += [f"GED levels: **low** below {trust['ged_low']:.4f}, **medium** up to {trust['ged_high']:.4f}, "
                "**high** from there (`trust.ged_low` / `trust.ged_high` in config.json). Fitted on the "
                f"calibration half of `val` ({fit.get('cases', '?')} cases) as the {fit.get('low_quantile', '?')} and "
                f"{fit.get('high_quantile', '?')} quantiles of the GED the Analyzer reports, so *high* marks the top "
                "of the review queue. Mean Dice per level on the calibration half:", "",
                _table(["level", "cases", "mean Dice"],
                       [[lvl, row.get("n"), row.get("dice_mean")] for lvl, row in (fit.get("levels") or {}).items()]), ""]
    if section is not None:
        columns = [tuple(c) for c in section["columns"]]
        out += [f"{section['title']} — `lesionviewer evaluate`, per half of `val`:", "",
                _table(["rows"] + [title for _, title in columns],
                       [[label] + [figures.get(key) for key, _ in columns] for label, figures in section["rows"].items()]),
                ""]
        reporting = section["rows"].get("reporting half") or section["rows"].get("all cases") or {}
        out += ["Against the issue's uncertainty targets (reporting half):", "",
                _table(["figure", "target", "reached", "met"],
                       [[name, target, reporting.get(key),
                         "yes" if reporting.get(key) is not None and reporting[key] >= target else "no"]
                        for name, key, target in UNCERTAINTY_TARGETS]), ""]
    return out


def run(args: argparse.Namespace) -> int:
    model_dir = Path(args.model)
    evaluation = json.loads(Path(args.evaluation).read_text())
    benchmark = Path(args.benchmark).read_text() if args.benchmark else None
    card = render(model_dir, evaluation, benchmark)
    (model_dir / "MODEL_CARD.md").write_text(card + "\n", encoding="utf-8")
    print(f"wrote {model_dir / 'MODEL_CARD.md'}")
    return 0
