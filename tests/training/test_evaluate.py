"""`lesionviewer evaluate` on a tiny synthetic data folder with a fake analyzer whose answers
are known, so every aggregate figure can be checked by hand."""

import argparse
import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lesionviewer.engine.analysis import Analysis, AnalysisSettings, Method, SkinTone
from lesionviewer.training import evaluate

GROUPS = {10: "light", 20: "dark"}
SIZE = 40
LESION = (slice(10, 30), slice(10, 30))  # 20x20 dark square = the reference


class FakeAnalyzer:
    """Reads its answer off the image: pixel (0, 0) holds the skin-tone code (red) and the
    malignancy probability in percent (green). diffseg finds the dark square exactly, probe only
    its top half; 3 of 4 samples are the consensus and the 4th is the whole square."""

    model_id = "fake@0"
    model_name = "fake"
    device = "cpu"
    working_size = 32

    def __init__(self, default_method=Method.FUSED, malignancy_head=True):
        self.default_settings = AnalysisSettings(samples=4, crf=False, method=default_method)
        self.malignancy_head = malignancy_head
        self.calls = []

    def analyze(self, rgb, settings=None, seed=0):
        method = settings.method
        self.calls.append(method)
        dark = rgb[..., 2] < 128
        consensus = dark.copy()
        if method is Method.PROBE:
            consensus[20:] = False
        samples = np.stack([consensus, consensus, consensus, dark])
        probability = samples.mean(axis=0).astype(np.float32)
        return Analysis(
            consensus_probability=probability,
            consensus_mask=probability >= 0.5,
            variance=(probability * (1 - probability)).astype(np.float32),
            entropy=np.zeros_like(probability),
            sample_masks=samples,
            timesteps=(60, 90, 120, 150),
            ged=0.0,
            malignancy_probability=rgb[0, 0, 1] / 100 if self.malignancy_head else None,
            skin_tone=SkinTone(float(rgb[0, 0, 0]), GROUPS[int(rgb[0, 0, 0])], 1000),
            model_id=self.model_id,
            device=self.device,
            settings={**settings.to_dict(), "samples": 4},
            timings={"total": 0.001},
            seed=seed,
        )


def _write_case(folder: Path, case_id: str, group_code: int, percent: int, mask_scale=1):
    image = np.full((SIZE, SIZE, 3), 220, np.uint8)
    image[LESION] = 60
    image[0, 0] = (group_code, percent, 220)
    cv2.imwrite(str(folder / f"{case_id}.png"), image[..., ::-1])
    mask = np.zeros((SIZE // mask_scale, SIZE // mask_scale), np.uint8)
    mask[10 // mask_scale : 30 // mask_scale, 10 // mask_scale : 30 // mask_scale] = 255
    cv2.imwrite(str(folder / f"{case_id}_mask.png"), mask)


@pytest.fixture
def data_dir(tmp_path):
    """a: malignant, p .8, light; b: benign, p .3, light (mask at half size); c: benign, p .6,
    dark; broken: not an image; nomask: no reference mask."""
    folder = tmp_path / "data"
    folder.mkdir()
    _write_case(folder, "a", 10, 80)
    _write_case(folder, "b", 10, 30, mask_scale=2)
    _write_case(folder, "c", 20, 60)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "broken_mask.png"), np.zeros((SIZE, SIZE), np.uint8))
    cv2.imwrite(str(folder / "nomask.png"), np.full((SIZE, SIZE, 3), 200, np.uint8))
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "source", "diagnosis", "malignant"])
        writer.writerows([["a", "t", "melanoma", 1], ["b", "t", "nevus", 0]])
        writer.writerow(["c", "t", "nevus", 0])
    return folder


@pytest.fixture(autouse=True)
def ged_without_engine(monkeypatch):
    """Until lesionviewer.engine.uncertainty lands, stand in for its ged with mean 1 - IoU."""
    try:
        from lesionviewer.engine.uncertainty import ged  # noqa: F401
    except ImportError:

        def mean_distance(samples, reference):
            inter = (samples & reference).sum(axis=(1, 2))
            union = (samples | reference).sum(axis=(1, 2))
            return float(np.mean(1 - inter / np.maximum(union, 1)))

        monkeypatch.setattr(evaluate, "ged_to_reference", mean_distance)


def _run(data_dir, tmp_path, monkeypatch, analyzer=None, *extra):
    analyzer = analyzer or FakeAnalyzer()
    monkeypatch.setattr(evaluate, "load_analyzer", lambda model, device: analyzer)
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    out = tmp_path / "out" / "report.json"
    args = parser.parse_args(["--data", str(data_dir), "--out", str(out), *extra])
    code = evaluate.run(args)
    document = None
    if out.exists():
        document = json.loads(out.read_text(), parse_constant=pytest.fail)  # no NaN in the file
    return code, document, out


def test_figures_match_hand_computed_values(data_dir, tmp_path, monkeypatch):
    code, report, _ = _run(data_dir, tmp_path, monkeypatch)
    assert code == 0
    assert report["n_cases"] == 3
    assert report["default_method"] == "fused"
    assert report["model_id"] == "fake@0"
    assert list(report["methods"]) == ["diffseg", "probe", "fused"]
    diffseg, probe = report["methods"]["diffseg"], report["methods"]["probe"]
    assert diffseg["n"] == 3 and diffseg["dice_mean"] == 1.0 and diffseg["hd95_mean"] == 0.0
    assert diffseg["thresholded_jaccard"] == 1.0
    # probe finds the top 200 of 400 lesion pixels: Dice 2*200/600, IoU 1/2 (< 0.65 -> 0)
    assert probe["dice_mean"] == pytest.approx(2 / 3)
    assert probe["iou_mean"] == pytest.approx(0.5)
    assert probe["precision_mean"] == 1.0 and probe["recall_mean"] == 0.5
    assert probe["thresholded_jaccard"] == 0.0
    assert probe["hd95_mean"] > 5
    # the samples disagree exactly on probe's missed half: variance ranks errors perfectly
    assert probe["uncertainty_error_auroc"] == 1.0
    assert diffseg["uncertainty_error_auroc"] is None  # no wrong pixel at all
    # malignancy: p = .8 (malignant), .3 and .6 (benign)
    assert probe["malignancy_auroc"] == 1.0
    assert probe["malignancy_sens_at_90spec"] == 1.0
    assert probe["malignancy_ece"] == pytest.approx((0.2 + 0.3 + 0.6) / 3)
    assert probe["ged_mean"] > diffseg["ged_mean"]


def test_per_group_and_per_image_rows(data_dir, tmp_path, monkeypatch):
    _, report, _ = _run(data_dir, tmp_path, monkeypatch)
    probe = report["methods"]["probe"]
    assert list(probe["per_group"]) == ["light", "dark"]  # lighter to darker, as ITA orders them
    assert probe["per_group"]["light"]["n"] == 2 and probe["per_group"]["dark"]["n"] == 1
    assert probe["per_group"]["dark"]["malignancy_auroc"] is None  # one class only
    rows = {row["id"]: row for row in probe["per_image"]}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["malignant"] == 1 and rows["a"]["malignancy_probability"] == pytest.approx(0.8)
    assert rows["c"]["skin_tone_group"] == "dark" and rows["c"]["ita_degrees"] == 20.0
    # b's reference is stored at half size and is scaled up to the image before comparing
    assert report["methods"]["diffseg"]["per_image"][1]["dice"] == 1.0
    for key in ("dice", "iou", "precision", "recall", "hd95", "ged", "seconds"):
        assert key in rows["a"]


def test_every_method_files_an_image_under_the_default_methods_skin_tone(
    data_dir, tmp_path, monkeypatch
):
    class ToneByMethod(FakeAnalyzer):
        def analyze(self, rgb, settings=None, seed=0):
            analysis = super().analyze(rgb, settings=settings, seed=seed)
            if settings.method is Method.PROBE:  # probe's consensus leaves other skin visible
                analysis.skin_tone = SkinTone(-50.0, "dark", 10)
            return analysis

    _, report, _ = _run(data_dir, tmp_path, monkeypatch, ToneByMethod())
    groups = {name: list(figures["per_group"]) for name, figures in report["methods"].items()}
    assert all(order == ["light", "dark"] for order in groups.values())
    assert report["methods"]["probe"]["per_group"]["light"]["n"] == 2


def test_unreadable_cases_are_skipped_not_fatal(data_dir, tmp_path, monkeypatch, capsys):
    code, report, _ = _run(data_dir, tmp_path, monkeypatch)
    assert code == 0
    assert {entry["id"] for entry in report["skipped"]} == {"broken", "nomask"}
    assert all(entry["reason"] for entry in report["skipped"])
    assert "skipped broken" in capsys.readouterr().err


def test_each_image_is_read_once_for_all_methods(data_dir, tmp_path, monkeypatch):
    reads = []
    real_load = evaluate.load_image
    monkeypatch.setattr(evaluate, "load_image", lambda path: reads.append(path) or real_load(path))
    analyzer = FakeAnalyzer()
    _run(data_dir, tmp_path, monkeypatch, analyzer)
    assert len(reads) == 4  # a, b, c and the broken one; nomask is skipped before reading
    assert len(analyzer.calls) == 3 * 3


def test_no_malignancy_head_gives_null_malignancy_figures(data_dir, tmp_path, monkeypatch):
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, FakeAnalyzer(malignancy_head=False))
    for figures in report["methods"].values():
        assert figures["malignancy_auroc"] is None
        assert figures["malignancy_sens_at_90spec"] is None
        assert figures["malignancy_ece"] is None


def test_methods_default_and_explicit(data_dir, tmp_path, monkeypatch):
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, FakeAnalyzer(default_method=Method.PROBE))
    assert list(report["methods"]) == ["diffseg", "probe"]
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, None, "--method", "probe", "--limit", "1")
    assert list(report["methods"]) == ["probe"]
    assert report["n_cases"] == 1
    assert report["overlay_method"] == "probe"  # the default (fused) was not evaluated


def test_without_split_every_case_is_evaluated(data_dir, tmp_path, monkeypatch):
    (data_dir / "splits.csv").write_text("id,split\na,val\nb,train\nc,val\n")
    _, report, _ = _run(data_dir, tmp_path, monkeypatch)
    assert report["split"] is None and report["n_cases"] == 3
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, None, "--split", "val")
    assert report["split"] == "val" and report["n_cases"] == 2
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, None, "--split", "train")
    assert report["n_cases"] == 1
    _, report, _ = _run(data_dir, tmp_path, monkeypatch, None, "--split", "all")
    assert report["split"] is None and report["n_cases"] == 3


def test_nothing_evaluated_exits_1(tmp_path, monkeypatch):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"")
    code, report, _ = _run(folder, tmp_path, monkeypatch)
    assert code == 1
    assert report["n_cases"] == 0 and report["skipped"][0]["id"] == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(empty, tmp_path, monkeypatch)[0] == 1
    assert _run(tmp_path / "missing", tmp_path, monkeypatch)[0] == 1


def test_missing_model_or_device_is_one_clear_line(data_dir, tmp_path, monkeypatch, capsys):
    from lesionviewer.engine.checkpoint import NoModelInstalled

    for error in (NoModelInstalled("No lesionviewer model is installed."), ValueError("no CUDA")):

        def fail(model, device, error=error):
            raise error

        parser = argparse.ArgumentParser()
        evaluate.add_arguments(parser)
        monkeypatch.setattr(evaluate, "load_analyzer", fail)
        args = parser.parse_args(["--data", str(data_dir), "--out", str(tmp_path / "r.json")])
        assert evaluate.run(args) == 1
        assert capsys.readouterr().err.strip() == f"lesionviewer evaluate: {error}"
    assert not (tmp_path / "r.json").exists()


def test_markdown_report_with_overlays(data_dir, tmp_path, monkeypatch):
    _, report, out = _run(data_dir, tmp_path, monkeypatch, None, "--method", "probe")
    markdown = out.with_suffix(".md").read_text()
    assert "| Method | n | Dice |" in markdown
    assert "probe / light" in markdown and "probe / dark" in markdown
    assert set(report["overlay_cases"]) == {"best", "median", "worst"}
    for label in ("best", "median", "worst"):
        link = markdown.split(f"![{label}: ")[1].split("(")[1].split(")")[0]
        picture = cv2.imread(str(out.parent / link))
        assert picture is not None
        assert picture.shape[1] == 2 * SIZE + 4  # photo with outlines | variance heatmap
        # both outline colours are drawn on the photo half
        photo = picture[:, :SIZE].reshape(-1, 3).tolist()
        assert [0, 200, 0] in photo and [255, 0, 255] in photo
    assert "broken" in markdown.split("## Skipped cases")[1]


def test_hd95_undefined_is_null_and_left_out_of_the_mean(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_case(folder, "a", 10, 50)
    image = np.full((SIZE, SIZE, 3), 220, np.uint8)  # no lesion in the image ...
    image[0, 0] = (10, 50, 220)
    cv2.imwrite(str(folder / "z.png"), image[..., ::-1])
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[5:8, 5:8] = 255  # ... but the expert marked one
    cv2.imwrite(str(folder / "z_mask.png"), mask)
    _, report, _ = _run(folder, tmp_path, monkeypatch, None, "--method", "diffseg")
    diffseg = report["methods"]["diffseg"]
    assert diffseg["per_image"][1]["hd95"] is None
    assert diffseg["hd95_mean"] == 0.0 and diffseg["hd95_undefined"] == 1
    assert diffseg["dice_mean"] == 0.5
    assert not math.isnan(diffseg["dice_mean"])


def _copy_case(source: Path, target: Path, case_id: str):
    for name in (f"{case_id}.jpg", f"{case_id}_mask.png"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((source / name).read_bytes())


def _synthetic_dermoscopy(folder: Path, case_id: str, size=(48, 64)):
    """A brown ellipse on pink skin, with its exact mask."""
    height, width = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (205, 160, 150)
    mask = np.zeros(size, np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (width // 4, height // 5), 0, 0, 360, 255, -1)
    image[mask > 0] = (110, 70, 50)
    cv2.imwrite(str(folder / f"{case_id}.jpg"), image[..., ::-1])
    cv2.imwrite(str(folder / f"{case_id}_mask.png"), mask)


def test_end_to_end_with_the_real_engine(tiny_model_dir, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _synthetic_dermoscopy(folder, "small")
    _synthetic_dermoscopy(folder, "large", size=(90, 120))
    (folder / "labels.csv").write_text("id,malignant\nsmall,1\nlarge,0\n")
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    out = tmp_path / "report.json"
    args = parser.parse_args(
        ["--data", str(folder), "--model", str(tiny_model_dir), "--out", str(out),
         "--device", "cpu", "--no-crf"]
    )
    assert evaluate.run(args) == 0
    report = json.loads(out.read_text(), parse_constant=pytest.fail)
    assert report["n_cases"] == 2 and report["default_method"] == "fused"
    assert list(report["methods"]) == ["diffseg", "probe", "fused"]
    for figures in report["methods"].values():
        assert figures["n"] == 2
        assert figures["settings"]["crf"] is False
        assert 0.0 <= figures["dice_mean"] <= 1.0
        assert figures["malignancy_auroc"] in (0.0, 0.5, 1.0)  # one pair: right, tied or wrong
        assert sum(group["n"] for group in figures["per_group"].values()) == 2
    pictures = sorted(p.name.split("_")[0] for p in tmp_path.glob("report_overlays/*.png"))
    assert pictures == ["best", "median", "worst"]
    assert "## Results per method" in out.with_suffix(".md").read_text()


@pytest.mark.data
def test_real_samples_at_their_own_resolution(tiny_model_dir, shared_data, tmp_path):
    samples = shared_data / "samples"
    folder = tmp_path / "data"
    _copy_case(samples, folder, "ISIC_0000068")
    _copy_case(samples, folder, "ham10000-600x450/ISIC_0024311")
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    out = tmp_path / "out" / "report.json"
    args = parser.parse_args(
        ["--data", str(folder), "--model", str(tiny_model_dir), "--out", str(out),
         "--device", "cpu", "--method", "probe", "--no-crf"]
    )
    assert evaluate.run(args) == 0
    report = json.loads(out.read_text())
    rows = report["methods"]["probe"]["per_image"]
    assert [row["id"] for row in rows] == ["ISIC_0000068", "ham10000-600x450/ISIC_0024311"]
    overlays = sorted(p.name for p in (out.parent / "report_overlays").glob("*.png"))
    assert any("ham10000-600x450_ISIC_0024311" in name for name in overlays)
    big = next(p for p in (out.parent / "report_overlays").glob("*ham10000*"))
    assert cv2.imread(str(big)).shape == (384, 2 * 512 + 4, 3)  # 600x450 shown at 512x384


def test_the_uncertainty_section_has_its_baselines_and_extra_sections_plug_in(data_dir, tmp_path, monkeypatch):
    from lesionviewer.training.report import ReportSection

    seen = []

    def extra(context):
        seen.append([r.case.id for r in context.results])
        return ReportSection("extra", "An extra section", [("n", "n")], {"all": {"n": len(context.results)}})

    monkeypatch.setattr(evaluate, "SECTION_BUILDERS",
                        [*evaluate.SECTION_BUILDERS, f"{__name__}:_extra_section"])
    monkeypatch.setitem(globals(), "_extra_section", extra)
    code, report, out = _run(data_dir, tmp_path, monkeypatch, None, "--method", "probe")
    assert code == 0
    keys = [s["key"] for s in report["sections"]]
    assert keys[0] == "uncertainty" and keys[-1] == "extra" and seen == [["a", "b", "c"]]
    rows = report["sections"][0]["rows"]
    everything = rows["all cases"]
    assert everything["n"] == 3 and everything["worst10_in_top10_random"] == 0.1
    # The fake's samples split exactly on probe's missed half, so the heatmap is perfect and
    # beats the distance-to-boundary baseline, which also lights correct pixels by the edge.
    assert everything["variance_error_auroc"] == 1.0
    assert everything["boundary_distance_auroc"] < 1.0
    assert set(rows) <= {"calibration half", "reporting half", "all cases"}
    markdown = out.with_suffix(".md").read_text()
    assert "Boundary-distance AUROC (baseline)" in markdown and "An extra section" in markdown
