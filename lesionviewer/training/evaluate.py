"""``lesionviewer evaluate``: score the Analyzer against expert masks in a data folder.

Reads the shared data format (:mod:`lesionviewer.training.cases`), reads each image once and
runs every requested method on it, then writes ``report.json`` (atomically), ``report.md`` and
``report_overlays/`` (best, median and worst case by Dice) next to each other.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lesionviewer.engine.analysis import Analysis, AnalysisSettings, Method, SkinTone
from lesionviewer.io.images import ImageLoadError, load_image, load_mask
from lesionviewer.training import metrics, report
from lesionviewer.training.cases import CaseRecord, read_cases
from lesionviewer.training.uncertainty_eval import UncertaintyTally
from lesionviewer.training.val_halves import val_half

# Extra report sections, in order: "module:function" names, each function taking the
# EvaluationContext and returning a report.ReportSection (or None to add nothing). A feature
# adds its figures by adding its builder here.
SECTION_BUILDERS = [
    "lesionviewer.training.uncertainty_eval:uncertainty_section",
    "lesionviewer.training.trust_report:malignancy_section",
    "lesionviewer.training.trust_report:ood_section",
]

GROUP_ORDER = ("very light", "light", "intermediate", "tan", "brown", "dark", "unknown")

DEFINITIONS = {
    "dice, iou, precision, recall": "per image, consensus mask against the reference, then "
    "averaged; both masks empty scores 1.0, a zero denominator with the other mask non-empty 0.0",
    "thresholded_jaccard": "ISIC 2018 Task 1 score: mean IoU where an image with IoU < 0.65 "
    "counts 0",
    "hd95": "95th percentile of the pooled boundary-to-boundary distances in both directions, "
    "in pixels of the image; both masks empty -> 0; exactly one empty -> undefined (null per "
    "image), left out of hd95_mean and counted in hd95_undefined",
    "ged": "generalized energy distance between the sample masks and the reference "
    "(lesionviewer.engine.uncertainty.ged), averaged over images",
    "uncertainty_error_auroc": "how well the per-pixel sample variance ranks the pixels where "
    "the consensus disagrees with the reference above the others; pixels of all images pooled; "
    "null when no pixel (or every pixel) is wrong",
    "malignancy_auroc, malignancy_sens_at_90spec, malignancy_ece": "over cases whose label is "
    "known; null when the model has no malignancy head or only one class is present; ECE with "
    "10 equal-width bins",
    "seconds_per_image": "wall-clock seconds of Analyzer.analyze per image, mean",
    "per_group": "the same figures per ITA skin-tone group of the surrounding skin",
}


@dataclasses.dataclass(frozen=True)
class ImageScore:
    """One method's figures for one image (one row of ``per_image``)."""

    id: str
    dice: float
    iou: float
    precision: float
    recall: float
    hd95: float  # NaN when exactly one of the masks is empty
    ged: float
    malignancy_probability: float | None
    malignant: int | None
    skin_tone_group: str
    ita_degrees: float
    seconds: float


@dataclasses.dataclass
class CaseResult:
    """What a section builder may read about one case of the lead method."""

    case: CaseRecord
    half: str  # "calibration" or "reporting" (lesionviewer.training.val_halves)
    score: ImageScore
    summary: dict[str, Any]  # Analysis.summary(): GED, its level, malignancy and its range, OOD...


@dataclasses.dataclass
class EvaluationContext:
    """Everything a report section builder gets: the analyzer (to run extra images, e.g. an
    out-of-distribution set), the lead method's per-case results, and the uncertainty tallies
    per half of `val`."""

    analyzer: Any
    args: argparse.Namespace
    split: str | None
    lead_method: str
    results: list[CaseResult]
    uncertainty: dict[str, UncertaintyTally]


def build_sections(context: EvaluationContext) -> list[dict[str, Any]]:
    """Run every SECTION_BUILDERS entry; a builder that fails is reported on stderr and skipped."""
    import importlib

    sections = []
    for name in SECTION_BUILDERS:
        module, _, function = name.partition(":")
        try:
            section = getattr(importlib.import_module(module), function)(context)
        except Exception as exc:  # one broken section must not lose the whole evaluation
            print(f"lesionviewer evaluate: section {name} failed: {exc!r}", file=sys.stderr)
            continue
        if section is not None:
            sections.append(section.to_dict())
    return sections


def ged_to_reference(sample_masks: np.ndarray, reference: np.ndarray) -> float:
    """GED of NxHxW bool samples against the HxW bool reference (engine's definition)."""
    from lesionviewer.engine.uncertainty import ged  # lazy: keeps torch out of `--help`

    return float(ged(sample_masks, reference))


class MethodTally:
    """What one method accumulates over the cases: per-image rows and pooled pixel counts."""

    def __init__(self) -> None:
        self.scores: list[ImageScore] = []
        self.error_auroc: dict[str, metrics.PooledAuroc] = {}  # per skin-tone group
        self.settings: dict[str, Any] | None = None

    def add(
        self,
        case: CaseRecord,
        analysis: Analysis,
        reference: np.ndarray,
        seconds: float,
        skin_tone: SkinTone | None = None,
    ) -> ImageScore:
        """Score ``analysis`` against ``reference`` (HxW bool, same size as the analysis).

        skin_tone: the group to file the image under; default ``analysis.skin_tone``.
        """
        predicted = analysis.consensus_mask
        skin_tone = skin_tone or analysis.skin_tone
        group = skin_tone.group
        self.error_auroc.setdefault(group, metrics.PooledAuroc()).add(
            analysis.variance, predicted != reference
        )
        probability = analysis.malignancy_probability
        score = ImageScore(
            id=case.id,
            dice=metrics.dice(predicted, reference),
            iou=metrics.iou(predicted, reference),
            precision=metrics.precision(predicted, reference),
            recall=metrics.recall(predicted, reference),
            hd95=metrics.hd95(predicted, reference),
            ged=ged_to_reference(analysis.sample_masks, reference),
            malignancy_probability=None if probability is None else float(probability),
            malignant=case.malignant,
            skin_tone_group=group,
            ita_degrees=float(skin_tone.ita_degrees),
            seconds=seconds,
        )
        self.scores.append(score)
        if self.settings is None:
            self.settings = dict(analysis.settings)
        return score

    def summary(self) -> dict[str, Any]:
        overall = metrics.PooledAuroc()
        for pooled in self.error_auroc.values():
            overall.merge(pooled)
        figures = aggregate(self.scores, overall)
        figures["per_group"] = {
            group: aggregate(
                [s for s in self.scores if s.skin_tone_group == group], self.error_auroc[group]
            )
            for group in sorted(self.error_auroc, key=_group_rank)
        }
        figures["settings"] = self.settings
        figures["per_image"] = [dataclasses.asdict(s) for s in self.scores]
        return figures


def _group_rank(group: str) -> tuple[int, str]:
    return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def aggregate(scores: list[ImageScore], error_auroc: metrics.PooledAuroc) -> dict[str, Any]:
    """Aggregate figures of a set of images (see DEFINITIONS)."""
    labelled = [
        s for s in scores if s.malignant is not None and s.malignancy_probability is not None
    ]
    probabilities = np.array([s.malignancy_probability for s in labelled], dtype=np.float64)
    labels = np.array([s.malignant for s in labelled], dtype=bool)
    hd95 = [s.hd95 for s in scores]
    return {
        "n": len(scores),
        "dice_mean": _mean([s.dice for s in scores]),
        "dice_median": float(np.median([s.dice for s in scores])) if scores else float("nan"),
        "iou_mean": _mean([s.iou for s in scores]),
        "precision_mean": _mean([s.precision for s in scores]),
        "recall_mean": _mean([s.recall for s in scores]),
        "thresholded_jaccard": metrics.thresholded_jaccard([s.iou for s in scores]),
        "hd95_mean": _mean(hd95),
        "hd95_undefined": int(sum(math.isnan(v) for v in hd95)),
        "ged_mean": _mean([s.ged for s in scores]),
        "uncertainty_error_auroc": error_auroc.value(),
        "malignancy_n": len(labelled),
        "malignancy_positives": int(labels.sum()),
        "malignancy_auroc": metrics.auroc(probabilities, labels),
        "malignancy_sens_at_90spec": metrics.sensitivity_at_specificity(probabilities, labels, 0.9),
        "malignancy_ece": metrics.expected_calibration_error(probabilities, labels, bins=10),
        "seconds_per_image": _mean([s.seconds for s in scores]),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lesionviewer evaluate``."""
    parser.add_argument(
        "--data", required=True, type=Path, help="folder with ID.jpg + ID_mask.png + labels.csv"
    )
    parser.add_argument(
        "--split",
        help="split from splits.csv to evaluate, e.g. val (default, or 'all': every case)",
    )
    parser.add_argument(
        "--method",
        action="append",
        choices=[m.value for m in Method],
        help="repeatable; default: diffseg, probe and the model's default method",
    )
    parser.add_argument("--model", type=Path, help="model folder (default: the installed model)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("report.json"),
        help="JSON report; the Markdown report (.md) and <stem>_overlays/ go next to it",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N cases (quick runs)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-crf", action="store_true", help="skip DenseCRF refinement")


def load_analyzer(model: Path | None, device: str):
    """The engine's Analyzer for ``model`` (default: the installed one)."""
    from lesionviewer.engine.checkpoint import find_default_model
    from lesionviewer.engine.pipeline import Analyzer

    return Analyzer.from_dir(model if model is not None else find_default_model(), device=device)


def select_cases(
    data: Path, split: str | None, limit: int | None
) -> tuple[list[CaseRecord], str | None]:
    """Cases to evaluate and the split name actually used (None = every case)."""
    if split == "all":
        split = None
    cases = read_cases(data, split)
    return (cases[:limit] if limit is not None else cases), split


def method_names(requested: list[str] | None, default: Method | str | None) -> list[str]:
    """``requested``, or diffseg, probe and the model's default; each once, in that order."""
    names = requested or [Method.DIFFSEG.value, Method.PROBE.value]
    if not requested and default:
        names.append(Method(default).value)
    return list(dict.fromkeys(names))


def evaluate_cases(
    analyzer,
    cases: list[CaseRecord],
    methods: list[str],
    *,
    settings: AnalysisSettings,
    seed: int,
    lead_method: str,
    overlays: report.OverlayStore | None = None,
    results: list[CaseResult] | None = None,
    uncertainty: dict[str, UncertaintyTally] | None = None,
) -> tuple[dict[str, MethodTally], list[dict[str, str]]]:
    """Run every method on every case, reading each image once.

    A case whose image or reference cannot be read is reported on stderr and returned in the
    skipped list ({"id", "reason"}); the rest go on. Returns (tally per method, skipped).

    lead_method (the model's default method, if evaluated) drives the overlays, the running
    Dice on the progress bar, ``results`` (one CaseResult per case, appended) and the pixel
    and per-case uncertainty figures (``uncertainty``: half of `val` -> tally). The engine estimates skin tone from the skin outside its own
    consensus, so it can differ a little between methods; every method files an image under
    the group that ``lead_method`` (run first) found, so per-group rows compare the same images.
    """
    tallies = {name: MethodTally() for name in methods}
    skipped: list[dict[str, str]] = []
    bar = tqdm(cases, desc="evaluate", unit="image", file=sys.stderr, dynamic_ncols=True)
    for case in bar:
        try:
            if case.mask_path is None:
                raise ImageLoadError(f"no reference mask {Path(case.id).name}_mask.png")
            rgb = load_image(case.image_path).rgb
            reference = load_mask(case.mask_path, shape=rgb.shape[:2])
        except (ImageLoadError, OSError) as exc:
            bar.write(f"skipped {case.id}: {exc}", file=sys.stderr)
            skipped.append({"id": case.id, "reason": str(exc)})
            continue
        skin_tone = None
        for name in sorted(methods, key=lambda name: name != lead_method):
            started = time.perf_counter()
            method_settings = dataclasses.replace(settings, method=Method(name))
            analysis = analyzer.analyze(rgb, settings=method_settings, seed=seed)
            seconds = time.perf_counter() - started
            skin_tone = skin_tone or analysis.skin_tone
            score = tallies[name].add(case, analysis, reference, seconds, skin_tone)
            if name == lead_method:
                half = val_half(case.id)
                if uncertainty is not None:
                    uncertainty.setdefault(half, UncertaintyTally()).add(
                        analysis.consensus_mask, analysis.variance, reference, analysis.ged
                    )
                if results is not None:
                    results.append(CaseResult(case, half, score, analysis.summary()))
            if overlays is not None and name == lead_method:
                panel = report.overlay_panel(
                    rgb, reference, analysis.consensus_mask, analysis.variance
                )
                overlays.add(case.id, panel)
        running = tallies[lead_method].scores
        if running:
            bar.set_postfix(dice=f"{np.mean([s.dice for s in running]):.3f}", refresh=False)
    bar.close()
    return tallies, skipped


def run(args: argparse.Namespace) -> int:
    """``lesionviewer evaluate``; 0 when at least one case was evaluated, 1 otherwise."""
    try:
        cases, split = select_cases(args.data, args.split, args.limit)
    except FileNotFoundError as exc:
        print(f"lesionviewer evaluate: {exc}", file=sys.stderr)
        return 1
    if not cases:
        print(f"lesionviewer evaluate: no cases in {args.data} (split: {split or 'all'})",
              file=sys.stderr)
        return 1
    from lesionviewer.engine.checkpoint import ModelError

    try:
        analyzer = load_analyzer(args.model, args.device)
    except (ModelError, ValueError) as exc:  # ValueError: a --device this machine lacks
        print(f"lesionviewer evaluate: {exc}", file=sys.stderr)
        return 1
    default = analyzer.default_settings.method
    default_method = Method(default).value if default else None
    methods = method_names(args.method, default)
    overlay_method = default_method if default_method in methods else methods[0]
    settings = AnalysisSettings(crf=False if args.no_crf else None, device=args.device)
    out = Path(args.out)
    overlay_dir = out.with_name(f"{out.stem}_overlays")
    case_results: list[CaseResult] = []
    uncertainty: dict[str, UncertaintyTally] = {}
    with report.OverlayStore() as overlays:
        tallies, skipped = evaluate_cases(
            analyzer,
            cases,
            methods,
            settings=settings,
            seed=args.seed,
            lead_method=overlay_method,
            overlays=overlays,
            results=case_results,
            uncertainty=uncertainty,
        )
        results = {name: tally.summary() for name, tally in tallies.items()}
        picks = report.best_median_worst(results[overlay_method]["per_image"])
        written = overlays.export(picks, overlay_dir) if picks else {}
    document = {
        "default_method": default_method,
        "model_id": analyzer.model_id,
        "data": str(Path(args.data).resolve()),
        "split": split,
        "n_cases": len(cases) - len(skipped),
        "settings": {
            "seed": args.seed,
            "crf": False if args.no_crf else analyzer.default_settings.crf,
            "device": analyzer.device,
            "limit": args.limit,
            "methods": methods,
        },
        "methods": results,
        "overlay_method": overlay_method,
        "overlay_cases": dict(picks),
        "skipped": skipped,
        "definitions": DEFINITIONS,
    }
    context = EvaluationContext(analyzer, args, split, overlay_method, case_results, uncertainty)
    document["sections"] = build_sections(context)
    print_sections(document["sections"])
    report.write_json_atomic(out, document)
    md_path = out.with_suffix(".md")
    markdown = report.markdown_report(report.json_ready(document), written, md_path)
    md_path.write_text(markdown, encoding="utf-8")
    print(f"wrote {out}, {md_path} and overlays in {overlay_dir}", file=sys.stderr)
    return 0 if document["n_cases"] > 0 else 1


def print_sections(sections: list[dict[str, Any]]) -> None:
    """The sections' tables on stdout (the Markdown report has them too)."""
    for section in sections:
        print("\n".join(report.section_markdown(report.json_ready(section))).strip() + "\n")
