"""COCO export that pycocotools and COCO tools read back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lesionviewer.io.coco import counts_to_string, mask_bbox, mask_runs, string_to_counts
from lesionviewer.io.export import coco_from_cases, rle_decode, rle_encode

# A 50x70 mask's counts as written by pycocotools (from the README of armengot/COCOtoolsFORK,
# which shows pycocotools.mask.encode output): a real-world check of the string codec.
PYCOCOTOOLS_50x70 = (
    "0g05b08J4M2N2NA^O1`0OCO=0E090H080IO68DH;>@C>a0_O_O`0j0OWOF<:CM72I24NL43JM92FN;1ENKO72L0LO91J0MO"
    "92INO0NO122OO0M031O000NO31OO11MO40N011MO41MO21L06OL021L06OL021L06OL021L060J040L060J040L060J040L06"
    "0J040L060J040L060J040L060KO31L060KO31L06OL021L06OL021L06OL021MO41MO21MO40N100NO310O00M0310O00NO12"
    "20NO92IONO91KOMO72M0<1EO:2GN63KM34OLM73JF<;=1G_O_Ob0=AC`07EH=1IO71H090F0:1DO>1_O1b0>2N2N3L6H]O"
)


def test_hand_checked_3x3_example():
    mask = np.array([[0, 1, 0],
                     [0, 1, 1],
                     [0, 0, 0]], bool)
    # Column-major pixels: 0 0 0 | 1 1 0 | 0 1 0 -> runs 3 zeros, 2 ones, 2 zeros, 1 one, 1 zero.
    assert mask_runs(mask) == [3, 2, 2, 1, 1]
    # 3 -> "3", 2 -> "2", 2 -> "2"; then differences to the count two before:
    # 1 - 2 = -1 -> 5-bit group 31, no continuation -> chr(48 + 31) = "O", twice.
    assert rle_encode(mask) == {"size": [3, 3], "counts": "322OO"}
    np.testing.assert_array_equal(rle_decode({"size": [3, 3], "counts": "322OO"}), mask)


def test_first_pixel_lesion_starts_with_an_empty_zero_run_and_big_counts_continue():
    mask = np.ones((10, 10), bool)
    assert mask_runs(mask) == [0, 100]
    # 100 = 0b11_00100: group 4 with continuation (4 | 32 = 36 -> "T"), then 3 -> "3".
    assert rle_encode(mask)["counts"] == "0T3"
    assert rle_encode(np.zeros((2, 2), bool))["counts"] == "4"
    assert string_to_counts("T3") == [100]


def test_string_written_by_pycocotools_decodes_and_re_encodes_identically():
    mask = rle_decode({"size": [50, 70], "counts": PYCOCOTOOLS_50x70})
    assert mask.shape == (50, 70)
    assert rle_encode(mask)["counts"] == PYCOCOTOOLS_50x70
    assert rle_decode({"size": [50, 70], "counts": PYCOCOTOOLS_50x70.encode()}).sum() == mask.sum()


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_random_masks(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 60, 2)
    mask = rng.random((height, width)) < rng.random()
    if seed % 3 == 0:  # lesion-like blob with long runs, counts > 31 exercise multi-group numbers
        mask = np.zeros((height + 100, width + 100), bool)
        mask[20:90, 30:80] = True
    encoded = rle_encode(mask)
    assert isinstance(encoded["counts"], str) and encoded["counts"].isascii()
    np.testing.assert_array_equal(rle_decode(encoded), mask)
    assert string_to_counts(counts_to_string(mask_runs(mask))) == mask_runs(mask)
    np.testing.assert_array_equal(rle_decode({"size": list(mask.shape), "counts": mask_runs(mask)}), mask)


def test_bad_rle_is_refused():
    with pytest.raises(ValueError):
        rle_decode({"size": [3, 3], "counts": "32"})
    with pytest.raises(ValueError):
        rle_decode({"size": [2, 2], "counts": "T"})  # ends inside a number


def test_bbox_matches_pycocotools_to_bbox_convention():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert mask_bbox(mask) == [3.0, 2.0, 6.0, 3.0]
    assert mask_bbox(np.zeros((3, 3), bool)) == [0.0, 0.0, 0.0, 0.0]


def test_coco_json_holds_images_one_category_and_annotations():
    lesion = np.zeros((20, 30), bool)
    lesion[5:15, 10:25] = True
    other = np.zeros((8, 8), bool)
    other[0, 0] = True
    coco = coco_from_cases([("a.jpg", lesion), ("empty.jpg", np.zeros((4, 4), bool)), ("sub/b.png", other)])
    json.dumps(coco)
    assert [i["file_name"] for i in coco["images"]] == ["a.jpg", "empty.jpg", "sub/b.png"]
    assert coco["images"][0] == {"id": 1, "file_name": "a.jpg", "width": 30, "height": 20}
    assert coco["categories"] == [{"id": 1, "name": "lesion", "supercategory": "skin"}]
    assert [a["image_id"] for a in coco["annotations"]] == [1, 3]  # no annotation for an empty mask
    first = coco["annotations"][0]
    assert first["area"] == 150 and first["bbox"] == [10.0, 5.0, 15.0, 10.0]
    assert first["iscrowd"] == 0 and first["category_id"] == 1 and first["id"] == 1
    np.testing.assert_array_equal(rle_decode(first["segmentation"]), lesion)
    assert coco["info"]["version"]
