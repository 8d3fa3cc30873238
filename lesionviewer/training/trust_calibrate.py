"""`lesionviewer train calibrate`: fit the trust layer of a trained model, through its own Analyzer.

On the *calibration* half of `val` only (:mod:`lesionviewer.training.val_halves`):

* the malignancy figure's Platt scaling and split-conformal range (alternatives: the photo
  mirrored, and the lesion pooled under the expert's outline), see :mod:`engine.malignancy`;
* the GED cut-off above which the figure is withheld (the one that best tells failed masks,
  IoU < 0.65, from the rest);
* the out-of-distribution cut-off (``--percentile`` of the score), the score's statistics
  coming from a seeded sample of `train` photos.

Every read-out comes from the Analyzer's own forward pass with the model's own sampling design,
so a model whose design changes must be calibrated again (run this after `train heads`). Writes
the ``malignancy_calibration`` and ``ood`` sections and a ``trust_training`` record (the
command, for the model card) into config.json, re-saving through ``save_model``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from lesionviewer.engine import trust
from lesionviewer.engine.analysis import AnalysisSettings
from lesionviewer.engine.pipeline import Analyzer, timesteps_for
from lesionviewer.training import metrics
from lesionviewer.training import trust_fit as F
from lesionviewer.training.cases import CaseRecord, read_cases
from lesionviewer.training.data import read_mask, read_rgb
from lesionviewer.training.val_halves import split_val


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder to calibrate (written back in place)")
    p.add_argument("--data", required=True, help="folder in the shared data format, with splits.csv")
    p.add_argument("--train-photos", type=int, default=500, help="train photos for the OOD statistics")
    p.add_argument("--coverage", type=float, default=0.9, help="nominal coverage of the malignancy range")
    p.add_argument("--percentile", type=float, default=97.5, help="OOD cut-off: this percentile of val scores")
    p.add_argument("--components", type=int, default=16, help="principal components of each OOD term")
    p.add_argument("--limit", type=int, help="first N calibration cases only (tests)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)


def timesteps_of(analyzer: Analyzer, settings: AnalysisSettings | None = None) -> tuple[int, ...]:
    s = analyzer.resolve(settings)
    return timesteps_for(s.samples, s.timestep_range)


def _samples(analyzer: Analyzer, photo: np.ndarray, seed: int, settings: AnalysisSettings | None = None):
    """The Analyzer's samples of a whole photo (its one batched forward pass)."""
    s = analyzer.resolve(settings)
    size = analyzer.working_size
    small = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        return analyzer._sample_probabilities(small, timesteps_for(s.samples, s.timestep_range), s.method, seed)


def readouts(analyzer: Analyzer, photos: list[np.ndarray], lesions: list[np.ndarray | None] | None = None, *,
             seed: int = 0, settings: AnalysisSettings | None = None) -> list[trust.Readout]:
    """The trust read-outs of whole photos (HxWx3 uint8 RGB) exactly as ``analyze`` makes them.
    lesions: per photo, the HxW 0..1 outline the head pools under (``analyze`` uses its
    consensus), or None for each sample's own mask."""
    out = []
    for i, photo in enumerate(photos):
        lesion = None if lesions is None or lesions[i] is None else np.asarray(lesions[i], np.float32)
        with torch.inference_mode():
            out.append(trust.readout(analyzer.model.malignancy, _samples(analyzer, photo, seed, settings), lesion))
    return out


def unrefined_readout(analyzer: Analyzer, photo: np.ndarray, seed: int = 0) -> trust.Readout:
    """The read-out with the lesion pooled under the samples' mean probability (the consensus
    before DenseCRF): the training photos' statistics without a CRF per photo."""
    samples = _samples(analyzer, photo, seed)
    with torch.inference_mode():
        return trust.readout(analyzer.model.malignancy, samples, np.mean([s.probability for s in samples], axis=0))


def case_readout(analyzer: Analyzer, photo: np.ndarray, reference: np.ndarray, seed: int = 0):
    """(analysis, shipped read-out, alternative mean logits (2,) or None) of one case: the figure
    as ``analyze`` gives it (pooled under its consensus), and the same lesion seen two other
    ways: the photo mirrored (under the mirrored consensus) and pooled under the expert's
    outline (HxW bool ``reference``)."""
    analysis = analyzer.analyze(photo, seed=seed)
    consensus = analysis.consensus_probability
    head = analyzer.model.malignancy
    samples = _samples(analyzer, photo, seed)
    with torch.inference_mode():
        shipped = trust.readout(head, samples, consensus)
        if shipped.logits is None:
            return analysis, shipped, None
        expert = trust.readout(head, samples, reference.astype(np.float32))
    mirrored = readouts(analyzer, [np.ascontiguousarray(photo[:, ::-1])], [np.ascontiguousarray(consensus[:, ::-1])],
                        seed=seed)[0]
    return analysis, shipped, np.array([mirrored.logits.mean(), expert.logits.mean()])


def calibration_readouts(analyzer: Analyzer, cases: list[CaseRecord], seed: int = 0) -> dict[str, np.ndarray]:
    """Per case: shipped per-sample logits (n, T), alternatives (n, 2), GED, IoU of the
    analysis against the expert mask, the label (-1 unknown); and "readouts" (the shipped
    read-outs, for the OOD statistics)."""
    rows: dict[str, list] = {k: [] for k in ("logits", "alternatives", "ged", "iou", "label")}
    reads = []
    for case in cases:
        photo, reference = read_rgb(case.image_path), read_mask(case.mask_path)
        analysis, shipped, alternatives = case_readout(analyzer, photo, reference, seed)
        rows["logits"].append(shipped.logits)
        rows["alternatives"].append(alternatives)
        reads.append(shipped)
        rows["ged"].append(analysis.ged)
        rows["iou"].append(metrics.iou(analysis.consensus_mask, reference))
        rows["label"].append(-1 if case.malignant is None else case.malignant)
    out = {k: np.asarray(v, np.float64) for k, v in rows.items()}
    out["readouts"] = reads
    return out


def fit_trust(analyzer: Analyzer, data: str | Path, *, train_photos: int = 500, coverage: float = 0.9,
              percentile: float = 97.5, components: int = 16, limit: int | None = None,
              seed: int = 0) -> dict[str, Any]:
    """The config sections to merge: {"malignancy_calibration": ..., "ood": ...}, plus a
    "trust_training" record. Fits on the calibration half of `val` and a train sample only."""
    started = time.time()
    calibration, _ = split_val(read_cases(data, split="val"), key=lambda c: c.id)
    calibration = [c for c in calibration if c.mask_path is not None][:limit]
    train = read_cases(data, split="train")
    pick = np.sort(np.random.default_rng(seed).permutation(len(train))[: min(train_photos, len(train))])
    train_reads = [unrefined_readout(analyzer, read_rgb(train[i].image_path), seed) for i in pick]
    cal = calibration_readouts(analyzer, calibration, seed=seed)
    ged_cutoff = F.fit_ged_cutoff(cal["ged"], cal["iou"])
    known = cal["label"] >= 0
    sections: dict[str, Any] = {}
    if analyzer.model.malignancy is not None and known.any():
        fitted = F.fit_malignancy(cal["logits"][known], cal["alternatives"][known], cal["label"][known],
                                  coverage=coverage, ged_cutoff=ged_cutoff)
        sections["malignancy_calibration"] = fitted.to_dict()
    params = F.fit_ood(F.stack_statistics(train_reads), timesteps_of(analyzer), F.stack_statistics(cal["readouts"]),
                       components=components, percentile=percentile)
    sections["ood"] = params.to_dict()
    sections["trust_training"] = {
        "calibration_cases": int(len(calibration)), "calibration_labelled": int(known.sum()),
        "train_photos": int(len(pick)), "coverage": coverage, "percentile": percentile,
        "components": components, "seed": seed, "minutes": round((time.time() - started) / 60, 1),
    }
    return sections


def run(args: argparse.Namespace) -> int:
    from lesionviewer.engine.checkpoint import save_model
    from lesionviewer.engine.model import load_model
    from lesionviewer.training.common import seed_everything

    seed_everything(args.seed, None)
    model = load_model(args.model)
    analyzer = Analyzer(model, device=args.device)
    sections = fit_trust(analyzer, args.data, train_photos=args.train_photos, coverage=args.coverage,
                         percentile=args.percentile, components=args.components, limit=args.limit,
                         seed=args.seed)
    sections["trust_training"]["command"] = getattr(args, "command_line", "") or "lesionviewer train calibrate"
    config = {k: v for k, v in model.config.items() if k not in ("weights", "config_sha256")}
    config.update(sections)
    save_model(args.model, config, model.state_dict())
    cal = sections.get("malignancy_calibration") or {}
    print(f"calibrated {args.model}: Platt a={cal.get('slope', float('nan')):.3f} b={cal.get('intercept', float('nan')):.3f}, "
          f"range q={cal.get('interval_quantile', float('nan')):.3f}, GED cut-off {cal.get('ged_cutoff')}, "
          f"OOD cut-off {sections['ood']['cutoff']:.3f} ({args.percentile}th percentile)", flush=True)
    return 0
