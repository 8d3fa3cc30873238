"""`lesionviewer synth`: new image-mask pairs from masks with a synthesis model.

Writes ``ID.jpg`` + ``ID_mask.png`` at the model's working size in the shared data format, a
``labels.csv`` marking every pair synthetic (with its parent case, the mask's origin, the
tone it was conditioned on and the tone measured on the result), a ``splits.csv`` (all
`train`), ``synth_info.json`` (model, settings, timing) and ``contact_sheet.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from lesionviewer.engine.checkpoint import ModelError
from lesionviewer.engine.skintone import estimate_skin_tone
from lesionviewer.training import data as D
from lesionviewer.training.cases import read_cases
from lesionviewer.training.common import seed_everything
from lesionviewer.training.synth.contact_sheet import contact_sheet, write_png
from lesionviewer.training.synth.masks import Deformation, deform
from lesionviewer.training.synth.model import TONES, Conditions, load_synthesis_model
from lesionviewer.training.synth.pairs import diagnosis_index
from lesionviewer.training.synth.sampling import initial_noise, sample

COLUMNS = ("id", "source", "diagnosis", "malignant", "label_source", "synthetic", "tone", "tone_condition",
           "ita", "mask_origin", "deformation", "parent_id", "model_id")
SHEET_PAIRS = 8
PARTIAL_LABELS = "labels.partial.csv"  # labels.csv appears only when every pair is written


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="synthesis model folder (from `lesionviewer train synth`)")
    p.add_argument("--masks", required=True, help="folder of ID_mask.png files (the shared data format)")
    p.add_argument("--split", help="only the cases of this split of --masks (needs its splits.csv)")
    p.add_argument("--out", required=True, help="folder to write the pairs to")
    p.add_argument("-n", type=int, required=True, help="how many pairs")
    p.add_argument("--tone", default="none", help=f"skin-tone group to condition on: one of {', '.join(TONES[:-1])}; "
                   "'parent' (the tone measured on each mask's photo) or 'none' (unconditioned)")
    p.add_argument("--deform", default="both", choices=[d.value for d in Deformation],
                   help="deformation of the varied masks")
    p.add_argument("--deformed-share", type=float, default=0.5, help="share of pairs made from deformed masks")
    p.add_argument("--steps", type=int, help="DDIM steps (default: the model's sampling.steps)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance (default: the model's sampling.guidance)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prefix", default="SYN", help="id prefix of the new pairs")
    p.add_argument("--threads", type=int, help="CPU threads for torch")


def _plan(cases, n: int, share: float, rng: np.random.Generator) -> list[tuple[int, bool]]:
    """(parent index, deformed?) per output: parents in a seeded order, each used once before any
    is used again; a ``share`` of the outputs (spread evenly) get a deformed mask."""
    order = np.concatenate([rng.permutation(len(cases)) for _ in range(n // len(cases) + 1)])[:n]
    deformed = np.zeros(n, bool)
    deformed[rng.permutation(n)[: int(round(share * n))]] = True
    return [(int(i), bool(d)) for i, d in zip(order, deformed)]


def _mask_at(mask: np.ndarray, size: int) -> np.ndarray:
    small = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return small >= 0.5


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed, args.threads)
    try:
        model = load_synthesis_model(args.model)
    except ModelError as e:
        print(f"lesionviewer synth: {e}", flush=True)
        return 2
    size, cfg_cond = model.working_size, model.config.get("conditions") or {}
    if args.tone not in (*TONES[:-1], "parent", "none"):
        raise SystemExit(f"--tone must be one of {', '.join(TONES[:-1])}, parent or none, not {args.tone!r}")
    if args.tone != "none" and not cfg_cond.get("tone"):
        raise SystemExit(f"{args.model} was trained without the skin-tone condition; use --tone none")
    steps = args.steps or int(model.config["sampling"]["steps"])
    guidance = float(model.config["sampling"]["guidance"] if args.guidance is None else args.guidance)
    cases = [c for c in read_cases(args.masks, split=args.split) if c.mask_path is not None]
    if not cases:
        raise SystemExit(f"no masks (ID_mask.png) in {args.masks}" + (f" for split {args.split}" if args.split else ""))
    rng = np.random.default_rng(args.seed)
    plan = _plan(cases, args.n, args.deformed_share, rng)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, sheet_real, sheet_synth = [], [], []
    start = time.time()
    bar = tqdm(total=len(plan), desc="synth", unit="pair", dynamic_ncols=True)
    for b0 in range(0, len(plan), args.batch):
        batch = plan[b0:b0 + args.batch]
        parents = [cases[i] for i, _ in batch]
        full_masks = [D.read_mask(c.mask_path) for c in parents]
        varied = [deform(m, rng, args.deform) if d else m for m, (_, d) in zip(full_masks, batch)]
        # a deformation refused `tries` times returns the real mask: label it real
        batch = [(i, d and not np.array_equal(v, m)) for (i, d), v, m in zip(batch, varied, full_masks)]
        masks = [_mask_at(v, size) for v in varied]
        parent_small = [cv2.resize(D.read_rgb(c.image_path), (size, size), interpolation=cv2.INTER_AREA) for c in parents]
        tones = [_tone_condition(args.tone, img, _mask_at(m, size)) for img, m in zip(parent_small, full_masks)]
        cond = Conditions(torch.tensor([TONES.index(t) if t else len(TONES) for t in tones]) if cfg_cond.get("tone") else None,
                          torch.tensor([diagnosis_index(c.diagnosis) for c in parents]) if cfg_cond.get("diagnosis") else None)
        mask_t = torch.from_numpy(np.stack(masks)).float()[:, None] * 2 - 1
        noise = initial_noise([args.seed * 1_000_003 + b0 + k for k in range(len(batch))], (3, size, size))
        images = sample(model.denoiser, model.schedule, mask_t, cond, steps, guidance, noise)
        rgb = ((images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        for k, (parent, (_, deformed)) in enumerate(zip(parents, batch)):
            case_id = f"{args.prefix}_{b0 + k + 1:06d}"
            cv2.imwrite(str(out / f"{case_id}.jpg"), rgb[k][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(out / f"{case_id}_mask.png"), masks[k].astype(np.uint8) * 255)
            measured = estimate_skin_tone(rgb[k], masks[k])
            rows.append({"id": case_id, "source": "synthetic", "diagnosis": parent.diagnosis,
                         "malignant": "" if parent.malignant is None else parent.malignant,
                         "label_source": _label_source(parent.diagnosis, bool(cfg_cond.get("diagnosis"))),
                         "synthetic": 1, "tone": tones[k] or measured.group, "tone_condition": tones[k] or "",
                         "ita": "" if not np.isfinite(measured.ita_degrees) else measured.ita_degrees,
                         "mask_origin": "deformed" if deformed else "real",
                         "deformation": args.deform if deformed else "none", "parent_id": parent.id,
                         "model_id": model.model_id})
            if len(sheet_synth) < SHEET_PAIRS:
                sheet_real.append((parent_small[k], _mask_at(full_masks[k], size)))
                sheet_synth.append((rgb[k], masks[k]))
        bar.update(len(batch))
        _write_csv(out / PARTIAL_LABELS, COLUMNS, rows)  # what is done so far, should the run be stopped
    bar.close()
    seconds = time.time() - start
    _write_csv(out / "labels.csv", COLUMNS, rows)
    (out / PARTIAL_LABELS).unlink(missing_ok=True)
    _write_csv(out / "splits.csv", ("id", "split"), [{"id": r["id"], "split": "train"} for r in rows])
    write_png(out / "contact_sheet.png", contact_sheet([sheet_real, sheet_synth],
                                                       ["real photo,\nexpert mask", f"synthetic\n{model.model_id}"]))
    info = {"model_id": model.model_id, "masks": str(args.masks), "split": args.split, "n": len(rows),
            "steps": steps, "guidance": guidance, "seed": args.seed, "tone": args.tone, "deform": args.deform,
            "deformed_share": args.deformed_share, "seconds": round(seconds, 1),
            "seconds_per_pair": round(seconds / max(1, len(rows)), 2), "torch_threads": torch.get_num_threads(),
            "command": getattr(args, "command_line", "")}
    (out / "synth_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {len(rows)} synthetic pairs to {out} ({info['seconds_per_pair']} s/pair)", flush=True)
    return 0


def _label_source(diagnosis: str, conditioned: bool) -> str:
    """Where the pair's diagnosis comes from: the label the image was conditioned on, the parent
    case's label (a model without the diagnosis condition), or nowhere."""
    if not diagnosis:
        return ""
    return "conditioned" if conditioned else "parent"


def _tone_condition(choice: str, image: np.ndarray, mask: np.ndarray) -> str:
    """The tone group to condition on ('' for none); 'parent' measures it on the mask's photo."""
    if choice == "none":
        return ""
    if choice == "parent":
        return estimate_skin_tone(image, mask).group
    return choice


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
