"""The bad-input corpus (tests/data/make_bad_corpus.py) through the io layer and `analyze`:
every entry opens upright, is refused in one sentence naming it, or is passed over by the
folder scan; the good files of the batch are still done; nothing is written for the refused;
docs/bad_inputs.md is the table these outcomes give (issue 12, bad-input corpus)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import cv2
import pytest

from lesionviewer.cli import main
from lesionviewer.io.images import ImageLoadError, load_image

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
WRITE_DOC = "LESIONVIEWER_WRITE_BAD_INPUTS_DOC"  # set to 1 to rewrite the doc from this run


def load_corpus_module():
    """tests/data/make_bad_corpus.py (a script, not a package module)."""
    if "make_bad_corpus" in sys.modules:
        return sys.modules["make_bad_corpus"]
    path = Path(__file__).resolve().parent / "data" / "make_bad_corpus.py"
    spec = importlib.util.spec_from_file_location("make_bad_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_bad_corpus"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bc = load_corpus_module()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-inputs")
    items = bc.make_corpus(root)
    yield root, items
    bc.restore_permissions(root)


def test_every_entry_opens_is_refused_in_one_sentence_or_is_not_listed(corpus):
    root, items = corpus
    outcomes = bc.io_outcomes(root, items)
    wrong = {i.name: outcomes[i.name] for i in items if outcomes[i.name][0] != i.expect}
    assert not wrong
    for item in items:
        outcome, message = outcomes[item.name]
        if item.expect == bc.REFUSED:
            assert "\n" not in message and item.reason in message, item.name
            stem = Path(item.name).name
            assert message.startswith(f"Cannot open '{stem[:60]}"), message
        elif item.expect == bc.OPENS and not item.name.startswith("many/"):
            image = load_image(root / item.name)
            assert (image.width, image.height) == item.size, item.name
            assert image.rgb.dtype.name == "uint8" and image.rgb.shape == (item.size[1], item.size[0], 3)
    assert len(items) >= 550


def test_exif_orientations_turn_the_photo_upright(corpus):
    """Orientation n applied to the stored pixels gives back the upright photo (tags 2-8)."""
    root, _ = corpus
    upright = load_image(root / "corpus" / "plain.jpg").rgb.astype(int)
    for n in range(2, 9):
        turned = load_image(root / "corpus" / f"exif-{n}.jpg").rgb.astype(int)
        assert turned.shape[:2] == (upright.shape[:2] if n < 5 else upright.shape[1::-1])
    # Orientation 3 is a half turn of the stored (upright) pixels: JPEG noise aside, equal.
    half_turn = load_image(root / "corpus" / "exif-3.jpg").rgb.astype(int)
    assert abs(half_turn[::-1, ::-1] - upright).mean() < 2


def _messages(stderr: str) -> list[str]:
    """stderr without tqdm's progress bar redraws."""
    return [line.strip() for line in re.split(r"[\r\n]", stderr)
            if line.strip() and not line.lstrip().startswith("analyze:")]


def test_analyze_does_the_good_files_and_names_each_bad_one_in_one_line(corpus, tiny_model_dir, tmp_path, capsys):
    root, items = corpus
    many = sorted((root / "many").iterdir())[:10]  # the 500-entry folder: the first 10, junk included
    chosen = [i for i in items if i.name.startswith("corpus/")
              or (root / i.name) in many and i.expect != bc.NOT_LISTED]
    out = tmp_path / "out"
    code = main(["analyze", str(root / "corpus"), *map(str, (p for p in many if p.suffix != ".txt"
                                                             and "_mask" not in p.name)),
                 "--out", str(out), "--model", str(tiny_model_dir), "--device", "cpu",
                 "--samples", "2", "--no-crf"])
    assert code == 1
    lines = _messages(capsys.readouterr().err)
    assert not [line for line in lines if "Traceback" in line or "Error:" in line]
    refused = [i for i in chosen if i.expect == bc.REFUSED]
    opened = [i for i in chosen if i.expect == bc.OPENS]
    for item in refused:
        stem = Path(item.name).name
        [line] = [line for line in lines if f"Cannot open '{stem}'" in line]
        assert line.startswith("lesionviewer analyze: ") and item.reason in line
    assert lines[-1].startswith(f"{len(opened)} of {len(opened) + len(refused)} image(s) analysed")
    assert len(lines) == 2 + len(refused)  # the header, one per refused file, the summary
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(written) == 3 * len(opened)  # three per photo, nothing else, no temporary files
    records = [json.loads((out / name).read_text()) for name in written if name.endswith("_analysis.json")]
    for item in opened:
        folder, _, name = item.name.rpartition("/")
        [record] = [r for r in records if r["source"] == name and r["id"].rpartition("/")[0] == folder]
        consensus = cv2.imread(str(out / f"{record['id']}_consensus.png"), cv2.IMREAD_UNCHANGED)
        assert consensus.shape == (item.size[1], item.size[0]), item.name


def test_docs_bad_inputs_is_the_table_this_corpus_gives(corpus):
    root, items = corpus
    table = bc.render_table(items, bc.io_outcomes(root, items))
    if os.environ.get(WRITE_DOC):
        text = DOC.read_text(encoding="utf-8")
        start, end = text.index("<!-- table -->\n") + len("<!-- table -->\n"), text.index("<!-- /table -->")
        DOC.write_text(text[:start] + table + text[end:], encoding="utf-8")
    text = DOC.read_text(encoding="utf-8")
    documented = text[text.index("<!-- table -->\n") + len("<!-- table -->\n"):text.index("<!-- /table -->")]

    def normal(s):  # byte counts differ between libjpeg builds
        return re.sub(r"\d[\d,]*", "N", s)

    assert normal(documented) == normal(table), (
        f"docs/bad_inputs.md is out of date: rerun with {WRITE_DOC}=1 to rewrite its table")


def test_a_file_given_by_name_that_is_not_a_file_is_refused(corpus):
    root, _ = corpus
    for name, words in (("corpus/folder.jpg", "folder"), ("corpus/self-folder", "folder")):
        with pytest.raises(ImageLoadError, match=words):
            load_image(root / name)
