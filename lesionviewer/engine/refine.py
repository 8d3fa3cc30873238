"""DenseCRF refinement of one lesion probability map with the image (Krähenbühl & Koltun 2011).

The unary is -log of the (clipped) probability; a Gaussian kernel smooths, a bilateral kernel
makes labels follow colour edges. Parameters live in the model's config under "crf".
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax


@dataclasses.dataclass(frozen=True)
class CRFParams:
    iterations: int = 5
    max_side: int = 256
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 30.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 5.0
    unary_clip: float = 0.02

    @classmethod
    def from_dict(cls, d: dict) -> CRFParams:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def crf_refine(rgb: np.ndarray, probability: np.ndarray, params: CRFParams) -> np.ndarray:
    """rgb: HxWx3 uint8 RGB; probability: HxW float in 0..1 (lesion). Returns the CRF's HxW
    float32 lesion marginal in 0..1."""
    h, w = probability.shape
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"image {rgb.shape[:2]} and probability {(h, w)} differ in size")
    p = np.clip(probability.astype(np.float32), params.unary_clip, 1 - params.unary_clip)
    crf = dcrf.DenseCRF2D(w, h, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb,
                             rgbim=np.ascontiguousarray(rgb, dtype=np.uint8), compat=params.bilateral_compat)
    # Mean-field iterations one at a time rather than crf.inference(n): pydensecrf holds the
    # Python lock for the whole of each call, so a single call froze the app's GUI thread for
    # the whole run (56 ms per sample). Between steps the lock is handed over (sleep(0)); the
    # steps are the same arithmetic as inference(n), so the marginals are bit-identical.
    q, scratch1, scratch2 = crf.startInference()
    for _ in range(params.iterations):
        time.sleep(0)
        crf.stepInference(q, scratch1, scratch2)
    return np.asarray(q, dtype=np.float32)[1].reshape(h, w)
