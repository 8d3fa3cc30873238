"""`lesionviewer train heads`: FEDD probes, the malignancy head, and the shipped settings.

On the backbone's frozen features: a small sweep of decoder blocks on `val`, the final
pixel-MLP ensemble on a share of the train split (--label-fraction), optional label-efficiency
runs, the malignancy head with temperature scaling on `val`, and the DiffSeg, CRF, fusion and
default-method choices on `val`. Everything chosen is written to the model's config.json and
the sweeps to heads_report.json, which the model card quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from lesionviewer.engine.checkpoint import save_model
from lesionviewer.engine.model import load_model
from lesionviewer.engine.pipeline import Analyzer
from lesionviewer.engine.probe import PixelProbe, ProbeConfig
from lesionviewer.training import data as D
from lesionviewer.training.cases import read_cases, read_extra_cases
from lesionviewer.training.common import hardware_description, pick_device, seed_everything
from lesionviewer.training.features import ALL_BLOCKS, extract, select_channels
from lesionviewer.training.probe_fit import mean_dice, probe_probabilities, train_malignancy, train_probe
from lesionviewer.training.tune import tune_crf_and_method, tune_diffseg

BLOCK_SWEEP = (("dec0", "dec1"), ("dec1", "dec2"), ("dec2", "dec3"), ("dec0", "dec1", "dec2"), ALL_BLOCKS)
LABEL_FRACTIONS = (0.05, 0.1, 0.2, 1.0)
REPORT_FILE = "heads_report.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True, help="model folder written by `train backbone`")
    p.add_argument("--data", required=True, help="folder in the shared data format, with splits.csv")
    p.add_argument("--out", help="model folder to write (default: the backbone's folder)")
    p.add_argument("--extra-data", nargs="+", default=[], metavar="DIR",
                   help="extra folders of image-mask pairs (e.g. synthetic ones) added to the probe's training "
                        "data at every label fraction; never used for val")
    p.add_argument("--label-fraction", type=float, default=1.0, help="share of train images with masks")
    p.add_argument("--label-efficiency", action="store_true", help=f"also report Dice at {LABEL_FRACTIONS}")
    p.add_argument("--timesteps", type=int, nargs="+", default=[60, 90, 120, 150])
    p.add_argument("--feature-size", type=int, default=48)
    p.add_argument("--pixels-per-image", type=int, default=256)
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--tune-cases", type=int, default=100, help="val cases for the CRF / method choice")
    p.add_argument("--train-limit", type=int, help="first N train cases only (tests)")
    p.add_argument("--val-limit", type=int, help="first N val cases only (tests)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)


def label_subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the ``fraction`` of n train images whose masks the probe may use."""
    keep = max(1, int(round(n * fraction)))
    return np.sort(np.random.default_rng(seed).permutation(n)[:keep])


def with_extras(chosen: np.ndarray, n_real: int, n_all: int) -> np.ndarray:
    """The chosen real images plus every extra one (indices n_real..n_all-1)."""
    return np.concatenate([chosen, np.arange(n_real, n_all)])


def pixel_rows(fs, images: np.ndarray, channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T*n*P, C) features and labels of the chosen images, over every timestep."""
    x = fs.pixels[:, images][..., channels].reshape(-1, len(channels))
    y = np.broadcast_to(fs.pixel_labels[images], fs.pixels.shape[:1] + fs.pixel_labels[images].shape).reshape(-1)
    return x, y


def _val_dice(probe: PixelProbe, val_fs, channels, masks: np.ndarray) -> tuple[float, list[float]]:
    """Consensus Dice over the timesteps (no CRF) and the Dice of each timestep alone."""
    size = masks.shape[1]
    per_t = [probe_probabilities(probe, val_fs.maps[t][:, channels], size) >= 0.5 for t in range(len(val_fs.timesteps))]
    votes = np.mean(per_t, axis=0) >= 0.5
    return mean_dice(votes, masks), [round(mean_dice(m, masks), 4) for m in per_t]


def run(args: argparse.Namespace) -> int:
    started = time.time()
    device = pick_device(args.device)
    seed_everything(args.seed, args.threads)
    model = load_model(args.backbone).to(device)
    out = Path(args.out or args.backbone)
    size = model.working_size
    train_cases = read_cases(args.data, split="train")[: args.train_limit]
    all_val = read_cases(args.data, split="val")
    val_cases = all_val[: args.val_limit]
    extra_cases, left_out = read_extra_cases(args.extra_data, holdout=all_val)
    for note in left_out:
        print(f"  extra data: {note}", flush=True)
    n_real = len(train_cases)
    train_cases = train_cases + extra_cases
    print(f"heads: {n_real} train (+{len(extra_cases)} extra) / {len(val_cases)} val cases, backbone {model.model_id}",
          flush=True)
    train = D.load_arrays(train_cases, size)
    val = D.load_arrays(val_cases, size)
    common = dict(seed=args.seed, device=str(device))
    train_fs = extract(model, train, args.timesteps, args.feature_size, pixels_per_image=args.pixels_per_image, **common)
    val_fs = extract(model, val, args.timesteps, args.feature_size, keep_maps=True, differences=True, **common)
    report: dict = {"backbone": model.model_id, "timesteps": args.timesteps, "feature_size": args.feature_size,
                    "train_cases": n_real, "val_cases": len(val_cases), "label_fraction": args.label_fraction,
                    "extra_data": {"folders": list(args.extra_data), "cases": len(extra_cases), "left_out": left_out}}

    # 1. Which decoder blocks: quick single-member probes, scored on val (no CRF).
    sweep = []
    labelled = with_extras(label_subset(n_real, args.label_fraction, args.seed), n_real, len(train_cases))
    for blocks in BLOCK_SWEEP:
        channels = select_channels(train_fs.channels, blocks, include_rgb=True)
        cfg = ProbeConfig(blocks=blocks, feature_size=args.feature_size, hidden=args.hidden, members=1)
        probe = train_probe(cfg, *pixel_rows(train_fs, labelled, channels), epochs=1, seed=args.seed)
        dice, per_t = _val_dice(probe, val_fs, channels, val.masks)
        sweep.append({"blocks": list(blocks), "val_dice_no_crf": round(dice, 4), "per_timestep": per_t})
        print(f"  blocks {'+'.join(blocks):24s} val Dice {dice:.4f}  per t {per_t}", flush=True)
    report["block_sweep"] = sweep
    blocks = tuple(max(sweep, key=lambda r: r["val_dice_no_crf"])["blocks"])
    channels = select_channels(train_fs.channels, blocks, include_rgb=True)
    probe_cfg = ProbeConfig(blocks=blocks, feature_size=args.feature_size, hidden=args.hidden, members=args.members)

    # 2. The shipped ensemble, and (optionally) label efficiency.
    probe = train_probe(probe_cfg, *pixel_rows(train_fs, labelled, channels), epochs=args.epochs, seed=args.seed)
    dice, per_t = _val_dice(probe, val_fs, channels, val.masks)
    report["probe"] = {"blocks": list(blocks), "members": args.members, "epochs": args.epochs,
                       "val_dice_no_crf": round(dice, 4), "per_timestep": per_t}
    print(f"probe ensemble: val Dice {dice:.4f} (no CRF, working resolution)", flush=True)
    if args.label_efficiency:
        report["label_efficiency"] = []
        for fraction in LABEL_FRACTIONS:
            chosen = with_extras(label_subset(n_real, fraction, args.seed), n_real, len(train_cases))
            p = probe if fraction == args.label_fraction else train_probe(
                probe_cfg, *pixel_rows(train_fs, chosen, channels), epochs=args.epochs, seed=args.seed)
            d, _ = _val_dice(p, val_fs, channels, val.masks)
            report["label_efficiency"].append({"fraction": fraction, "train_images": int(len(chosen)) - len(extra_cases),
                                               "extra_images": len(extra_cases),
                                               "val_dice_no_crf": round(d, 4)})
            print(f"  label fraction {fraction:>4}: {len(chosen)} images ({len(extra_cases)} extra), val Dice {d:.4f}",
                  flush=True)

    # 3. Malignancy head on pooled features (known labels only), every timestep an example; real
    # images only: an extra (synthetic) pair's diagnosis is its parent's, never confirmed on it.
    pooled_channels = np.concatenate([channels, channels + train_fs.channels["rgb"].stop, [2 * train_fs.channels["rgb"].stop]])
    known = labelled[(labelled < n_real) & (train.malignant[labelled] >= 0)]
    val_known = np.flatnonzero(val.malignant >= 0)
    tx = train_fs.pooled[:, known][..., pooled_channels].reshape(-1, len(pooled_channels))
    ty = np.tile(train.malignant[known], len(args.timesteps)).astype(np.float32)
    vx = val_fs.pooled[:, val_known][..., pooled_channels].mean(0)
    vy = val.malignant[val_known].astype(np.float32)
    fit = train_malignancy(tx, ty, vx, vy, seed=args.seed)
    report["malignancy"] = {"train_examples": int(len(tx)), "val_cases": int(len(vx)), "val_auroc_gt_mask": fit.val_auroc,
                            "temperature": fit.temperature, "epochs": fit.epochs}
    print(f"malignancy head: val AUROC {fit.val_auroc} (expert-mask pooling), T={fit.temperature:.3f}", flush=True)

    # 4. DiffSeg on stored noise differences.
    diffseg, diffseg_sweep = tune_diffseg(val_fs.differences, val.images, val.masks)
    report["diffseg_sweep"] = diffseg_sweep
    print(f"DiffSeg: {diffseg} val Dice {max(r['val_dice_no_crf'] for r in diffseg_sweep):.4f} (no CRF)", flush=True)

    # 5. Put it together, then CRF / method / fusion on val with the Analyzer itself.
    model.probe = probe
    model.malignancy = fit.head
    model.diffseg = diffseg
    config = dict(model.config, probe=dataclasses.replace(probe.cfg, in_channels=0).to_dict(),
                  malignancy={"hidden": fit.head.mlp[0].out_features}, diffseg=diffseg.to_dict())
    model.config = config
    analyzer = Analyzer(model, device=str(device))
    tune = val_cases[: args.tune_cases]
    images = [D.read_rgb(c.image_path) for c in tune]
    masks = [D.read_mask(c.mask_path) for c in tune]
    chosen, method_sweep = tune_crf_and_method(analyzer, images, masks)
    report["method_sweep"] = method_sweep
    report["chosen"] = chosen
    config["crf"] = chosen["crf"]
    config["fusion_weight"] = chosen["fusion_weight"]
    config["defaults"] = dict(config["defaults"], method=chosen["method"], crf=chosen["use_crf"])
    config["heads_training"] = {"minutes": round((time.time() - started) / 60, 1), "device": str(device),
                                "hardware": hardware_description(device),
                                "label_fraction": args.label_fraction, "seed": args.seed,
                                **({"extra_data": list(args.extra_data), "extra_cases": len(extra_cases)}
                                   if args.extra_data else {}),
                                "command": getattr(args, "command_line", "") or "lesionviewer train heads (called from Python)"}
    state = {f"unet.{k}": v for k, v in model.unet.state_dict().items()}
    state.update({f"probe.{k}": v for k, v in probe.state_dict().items()})
    state.update({f"malignancy.{k}": v for k, v in fit.head.state_dict().items()})
    digest = save_model(out, config, state)
    report["sha256"] = digest
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(f"heads saved to {out} (default method {chosen['method']}, val Dice {chosen['val_dice']:.4f} "
          f"on {len(tune)} cases) in {(time.time() - started) / 60:.1f} min", flush=True)
    return 0
