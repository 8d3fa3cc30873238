"""``lesionviewer evaluate-synth``: does a synthesis model's output look real, keep to its mask,
and help the analysis model's probe? Measured with the shipped analysis model only.

Three parts (``--parts``), each cached under ``--cache`` so a re-run repeats no forward pass:

* realism (:mod:`eval_realism`): KID of each set against real `val` in our denoiser's embedding,
  beside real `train` (the floor) and trivial stand-ins, all at the same n;
* fidelity (:mod:`eval_fidelity`): Dice of the Analyzer's mask on each synthetic photo against its
  conditioning mask, beside real `val` (the ceiling) and another pair's mask (the floor);
* probe (:mod:`eval_probe`): real labels only vs real + synthetic at several label fractions,
  Dice on real `val` overall and per skin-tone group.

Writes ``OUT/report.json`` and ``OUT/report.md``; with ``--card``, the report becomes the
card's ``## Measurements`` section. Real `val` is only ever scored, never trained on.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

PARTS = ("realism", "fidelity", "probe")
ORACLE = "real pairs as extra (oracle)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="real data in the shared format, with splits.csv (train / val)")
    p.add_argument("--synthetic", required=True, help="synthetic pairs of the model under test (`lesionviewer synth`)")
    p.add_argument("--ablation", help="synthetic pairs of the ablation (mask-only, no consistency loss, same budget)")
    p.add_argument("--oracle", help="real train pairs copied as if synthetic: a third probe arm, what perfect "
                   "synthetic pairs could give (probe part only)")
    p.add_argument("--model", help="analysis model whose features and Analyzer measure (default: the installed one)")
    p.add_argument("--out", default="models/lesionviewer-synth-s96/evaluation", help="folder for report.json / .md")
    p.add_argument("--card", help="model card whose '## Measurements' section the report replaces")
    p.add_argument("--cache", default="runs/synth-eval/cache", help="feature and analysis cache ('' for none)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--max-synthetic", type=int, default=1000, help="at most N pairs of each set (a seeded random choice)")
    p.add_argument("--kid-timestep", type=int, default=60)
    p.add_argument("--fidelity-n", type=int, default=100, help="photos analysed per set")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.2, 1.0])
    p.add_argument("--timesteps", type=int, nargs="+", default=[60], help="probe feature timesteps")
    p.add_argument("--pixels-per-image", type=int, default=128)
    p.add_argument("--members", type=int, default=1, help="probe ensemble members (the shipped probe has 5)")
    p.add_argument("--min-steps", type=int, default=150, help="optimiser steps of every probe at least")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the largest arm at each fraction (the others "
                   "train as many steps)")
    p.add_argument("--repeats", type=int, default=2, help="seeds per fraction (labelled images and probe initialisation)")
    p.add_argument("--train-limit", type=int, help="first N real train cases only (tests)")
    p.add_argument("--val-limit", type=int, help="first N val cases only (tests)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int)


def _labels(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / "labels.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def _synthetic_cases(folder: str, holdout, cap: int, seed: int):
    """Pairs of one synthetic folder as ``train heads --extra-data`` reads them (held-out parents
    left out), in a seeded random order, at most ``cap``; with each pair's asked-for tone."""
    from lesionviewer.training.cases import read_extra_cases

    cases, notes = read_extra_cases([folder], holdout=holdout)
    for note in notes:
        print(f"evaluate-synth: {note}", file=sys.stderr)
    cases = [cases[i] for i in np.random.default_rng(seed).permutation(len(cases))[:cap]]
    labels = _labels(Path(folder))
    rows = [labels.get(c.id.split("/", 1)[1], {}) for c in cases]
    tones = [r.get("tone_condition", r.get("tone", "")) for r in rows]  # the tone asked for, when recorded
    return cases, tones


def run(args: argparse.Namespace) -> int:
    from lesionviewer.engine.checkpoint import find_default_model
    from lesionviewer.engine.model import load_model
    from lesionviewer.engine.probe import ProbeConfig
    from lesionviewer.training import data as D
    from lesionviewer.training.cases import read_cases
    from lesionviewer.training.common import seed_everything
    from lesionviewer.training.synth import eval_report
    from lesionviewer.training.synth.eval_features import probe_features

    started = time.time()
    seed_everything(args.seed, args.threads)
    cache = Path(args.cache) if args.cache else None
    model_dir = Path(args.model) if args.model else find_default_model()
    model = load_model(model_dir).to(args.device)
    size = model.working_size
    train_cases = read_cases(args.data, split="train")[: args.train_limit]
    all_val = read_cases(args.data, split="val")
    val_cases = all_val[: args.val_limit]
    sets = {"synthetic (full)": args.synthetic, **({"synthetic (ablation)": args.ablation} if args.ablation else {}),
            **({ORACLE: args.oracle} if args.oracle and "probe" in args.parts else {})}
    synthetic = {name: _synthetic_cases(folder, all_val, args.max_synthetic, args.seed) for name, folder in sets.items()}
    for name, (cases, _) in synthetic.items():
        if not cases:
            print(f"evaluate-synth: no usable pairs in {sets[name]}", file=sys.stderr)
            return 1
    inputs = {"model": model.model_id, "data": str(args.data), "sets": sets, "seed": args.seed,
              "max_synthetic": args.max_synthetic, "train_cases": len(train_cases), "val_cases": len(val_cases)}
    out = Path(args.out)
    previous = out / "report.json"
    document = json.loads(previous.read_text()) if previous.is_file() else {}
    if document.get("inputs") != inputs:
        document = {}
    document["inputs"] = inputs
    document.setdefault("commands", {})
    command = getattr(args, "command_line", "") or "lesionviewer evaluate-synth (called from Python)"
    print(f"evaluate-synth: {len(train_cases)} train / {len(val_cases)} val real cases, "
          + ", ".join(f"{len(c)} {n}" for n, (c, _) in synthetic.items()) + f"; analysis model {model.model_id}",
          flush=True)
    val = D.load_arrays(val_cases, size)
    arrays = {name: D.load_arrays(cases, size) for name, (cases, _) in synthetic.items()}

    if "realism" in args.parts:
        from lesionviewer.training.synth.eval_realism import realism_rows

        order = np.random.default_rng(args.seed).permutation(len(train_cases))[: len(val_cases)]
        floor = D.load_arrays([train_cases[i] for i in order], size)
        n = min([len(val_cases), len(floor.ids)] + [len(a.ids) for k, a in arrays.items() if k != ORACLE])
        document["realism"] = {"n": n, "timestep": args.kid_timestep, "rows": realism_rows(
            model, val.images, floor.images, floor.masks, {k: a.images for k, a in arrays.items() if k != ORACLE}, n,
            timestep=args.kid_timestep, seed=args.seed, cache_dir=cache)}
        document["commands"]["realism"] = command
        _log_rows(document["realism"]["rows"], ("set", "n", "kid", "kid_std", "frechet"))

    if "fidelity" in args.parts:
        from lesionviewer.engine.pipeline import Analyzer
        from lesionviewer.training.synth.eval_fidelity import analyse_pairs, fidelity_row

        analyzer = Analyzer(model, device=args.device)
        k = args.fidelity_n
        val_order = np.random.default_rng(args.seed).permutation(len(val_cases))[:k]
        ceiling = [val_cases[i] for i in val_order]
        rows = [fidelity_row("real val (ceiling)", analyse_pairs(analyzer, ceiling, seed=args.seed, cache_dir=cache))]
        side = _photo_side(next(iter(synthetic.values()))[0][0].image_path)
        if side != _photo_side(ceiling[0].image_path):  # the ceiling again at the synthetic photos' size
            rows.append(fidelity_row(f"real val at {side} px (ceiling)", analyse_pairs(
                analyzer, ceiling, seed=args.seed, cache_dir=cache, size=side)))
        for name, (cases, tones) in synthetic.items():
            if name == ORACLE:
                continue
            rows.append(fidelity_row(name, analyse_pairs(analyzer, cases[:k], seed=args.seed, cache_dir=cache),
                                     tones[:k]))
        document["fidelity"] = {"n": k, "method": analyzer.default_settings.method.value, "rows": rows}
        document["commands"]["fidelity"] = command
        _log_rows(rows, ("set", "n", "dice", "dice_random_mask", "tone_agreement"))

    if "probe" in args.parts:
        from lesionviewer.training.synth.eval_probe import case_tone_groups, label_fraction_table

        shipped = model.probe.cfg if model.probe is not None else ProbeConfig()
        probe_cfg = ProbeConfig(blocks=shipped.blocks, include_rgb=shipped.include_rgb, feature_size=shipped.feature_size,
                                hidden=shipped.hidden, members=args.members)
        common = dict(seed=args.seed, cache_dir=cache)
        train = D.load_arrays(train_cases, size)
        train_fs, train_key = probe_features(model, train, args.timesteps, probe_cfg.feature_size,
                                             pixels_per_image=args.pixels_per_image, **common)
        val_fs, val_key = probe_features(model, val, args.timesteps, probe_cfg.feature_size, keep_maps=True, **common)
        keys = {"train": train_key, "val": val_key}
        synth_fs = {}
        for name, a in arrays.items():
            synth_fs[name], keys[name] = probe_features(model, a, args.timesteps, probe_cfg.feature_size,
                                                        pixels_per_image=args.pixels_per_image, **common)
        groups = case_tone_groups(val_cases)
        rows = label_fraction_table(train_fs, val_fs, val.masks, groups, synth_fs, probe_cfg, fractions=args.fractions,
                                    epochs=args.epochs, seed=args.seed, repeats=args.repeats, min_steps=args.min_steps,
                                    log=lambda s: print(s, flush=True),
                                    cache_dir=cache, keys=keys)
        document["probe"] = {"timesteps": args.timesteps, "pixels_per_image": args.pixels_per_image,
                             "members": args.members, "epochs": args.epochs, "repeats": args.repeats,
                             "min_steps": args.min_steps,
                             "blocks": list(probe_cfg.blocks),
                             "feature_size": probe_cfg.feature_size, "rows": rows}
        document["commands"]["probe"] = command
        document["decision"] = eval_report.decision(rows)

    document["minutes_last_run"] = round((time.time() - started) / 60, 1)
    out.mkdir(parents=True, exist_ok=True)
    previous.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    markdown = eval_report.markdown(document)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    if args.card:
        eval_report.replace_section(Path(args.card), markdown)
    print(f"evaluate-synth: wrote {previous} and report.md" + (f", and {args.card}" if args.card else "")
          + f" in {(time.time() - started) / 60:.1f} min", flush=True)
    return 0


def _photo_side(path: Path) -> int:
    from lesionviewer.io.images import load_image

    return max(load_image(path).rgb.shape[:2])


def _log_rows(rows: list[dict], keys) -> None:
    for row in rows:
        print("  " + "  ".join(f"{k}={row.get(k)}" for k in keys), flush=True)
