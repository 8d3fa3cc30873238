"""The engine's one public entry point: :class:`Analyzer` (an RGB image in, an Analysis out).

One analysis: resize the image (or the chosen region) to the model's working resolution, noise
it once per sample, run the denoiser for all samples and labels in one batched pass, and turn
each sample into a soft lesion probability (DiffSeg, probe, or both). Then one of two designs,
chosen by the model's ``uncertainty`` config section (see :class:`SamplingDesign`):

* soft (models that have the section): the samples differ in timestep, in the probe ensemble
  member that reads them and in a flipped view of the photo (test-time augmentation), so they
  disagree where the model is unsure. Their soft mean is refined once with DenseCRF into the
  consensus; the sample masks and GED are taken *before* refinement (a CRF makes samples agree
  where the model did not), and the heatmap is the predictive variance of the soft samples.
* votes (older models): every sample refined with DenseCRF, consensus = share of votes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from lesionviewer.engine import ood
from lesionviewer.engine import uncertainty as U
from lesionviewer.engine.analysis import Analysis, AnalysisCancelled, AnalysisSettings, Method, Progress
from lesionviewer.engine.checkpoint import ModelError
from lesionviewer.engine.device import resolve_device
from lesionviewer.engine.diffseg import (
    Statistic,
    difference_probability,
    error_difference,
    field_of_view,
    fill_holes,
    noise_difference,
)
from lesionviewer.engine.model import LesionModel, load_model
from lesionviewer.engine.probe import gather_features
from lesionviewer.engine.refine import crf_refine
from lesionviewer.engine.sampling import SamplingDesign, full_map, full_masks, paste, unview, view
from lesionviewer.engine.skintone import estimate_skin_tone
from lesionviewer.engine.trust import assess
from lesionviewer.engine.unet import Label

ProgressCallback = Callable[[Progress], None]


def timesteps_for(samples: int, timestep_range: tuple[int, int]) -> tuple[int, ...]:
    """``samples`` steps spread evenly over the inclusive range, e.g. 4 over (60, 150) ->
    (60, 90, 120, 150)."""
    lo, hi = timestep_range
    return tuple(int(round(v)) for v in np.linspace(lo, hi, samples))


def _fit_side(h: int, w: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


@dataclasses.dataclass
class _Sample:
    probability: np.ndarray  # S x S float32 at the working resolution, in the photo's orientation
    features: torch.Tensor | None  # 1 x C x f x f probe features (photo's orientation), for the malignancy head
    denoising_error: float | None = None  # mean squared noise-prediction error (lesion label), for the OOD score


class Analyzer:
    """Analyses RGB images with one loaded model on one device. Not thread-safe: use one
    Analyzer per worker thread."""

    def __init__(self, model: LesionModel, device: str = "auto"):
        self.model = model
        self.device = resolve_device(device)
        model.to(self.device)
        self.working_size = model.working_size
        self.design = SamplingDesign.from_config(model.config)
        defaults = model.config.get("defaults", {})
        # A default method that needs a missing probe is refused when the model is built
        # (config_schema), never switched here behind the user's back.
        method = Method(defaults.get("method", "diffseg"))
        self.default_settings = AnalysisSettings(
            samples=int(defaults.get("samples", 4)),
            timestep_range=tuple(defaults.get("timestep_range", (60, 150))),
            crf=bool(defaults.get("crf", True)),
            method=method,
            threshold=float(defaults.get("threshold", 0.5)),
            device=self.device,
        )

    @classmethod
    def from_dir(cls, model_dir: str | Path, device: str = "auto") -> Analyzer:
        return cls(load_model(model_dir), device=device)

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def model_name(self) -> str:
        return self.model.name

    def resolve(self, settings: AnalysisSettings | None) -> AnalysisSettings:
        """Settings with every None taken from the model's defaults, checked."""
        s = settings or AnalysisSettings()
        d = self.default_settings
        resolved = AnalysisSettings(
            samples=d.samples if s.samples is None else int(s.samples),
            timestep_range=d.timestep_range if s.timestep_range is None else tuple(int(v) for v in s.timestep_range),
            crf=d.crf if s.crf is None else bool(s.crf),
            method=d.method if s.method is None else Method(s.method),
            threshold=d.threshold if s.threshold is None else float(s.threshold),
            device=self.device,
        )
        lo, hi = resolved.timestep_range
        if not (0.0 < resolved.threshold < 1.0):
            raise ValueError(f"threshold must be between 0 and 1, not {resolved.threshold}")
        if not (1 <= resolved.samples <= 64):
            raise ValueError(f"samples must be between 1 and 64, not {resolved.samples}")
        if not (0 <= lo <= hi < self.model.schedule.num_timesteps):
            raise ValueError(f"timestep range {lo}..{hi} is outside 0..{self.model.schedule.num_timesteps - 1}")
        if resolved.method is not Method.DIFFSEG and self.model.probe is None:
            raise ModelError(f"model {self.model_id} has no trained probe: use method 'diffseg'")
        return resolved

    @torch.inference_mode()
    def analyze(
        self,
        image: np.ndarray,
        settings: AnalysisSettings | None = None,
        *,
        seed: int = 0,
        region: tuple[int, int, int, int] | None = None,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Analysis:
        """image: HxWx3 uint8 RGB, any size. region: (x, y, w, h) in image pixels, or None.

        Deterministic for a given seed, settings and device. Raises AnalysisCancelled when
        ``cancelled()`` answers True between steps.
        """
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
                and image.size > 0):
            raise ValueError("the image must be an HxWx3 uint8 RGB array with at least one pixel")
        s = self.resolve(settings)
        soft = self.design.soft
        timesteps = timesteps_for(s.samples, s.timestep_range)
        total = 3 + (1 if soft and not self.design.crf_samples else len(timesteps))
        started = time.perf_counter()
        timings: dict[str, float] = {}
        done = 0

        def step(stage: str) -> None:
            nonlocal done
            if cancelled is not None and cancelled():
                raise AnalysisCancelled(stage)
            if progress is not None:
                progress(Progress(done, total, stage, time.perf_counter() - started))
            done += 1

        full_h, full_w = image.shape[:2]
        x, y, w, h = self._clip_region(region, full_w, full_h)
        crop = np.ascontiguousarray(image[y:y + h, x:x + w])

        step("preparing the image")
        tick = time.perf_counter()
        size = self.working_size
        small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        crf_h, crf_w = _fit_side(h, w, self.model.crf.max_side)
        crf_image = cv2.resize(crop, (crf_w, crf_h), interpolation=cv2.INTER_AREA)
        timings["prepare"] = time.perf_counter() - tick

        step("denoiser forward pass")
        tick = time.perf_counter()
        samples = self._sample_probabilities(small, timesteps, s.method, seed)
        timings["denoiser"] = time.perf_counter() - tick

        if soft:
            small_maps, small_masks, ged = self._soft_maps(samples, crf_image, s, step, timings)
            tick = time.perf_counter()
            consensus, variance, entropy = (full_map(m, (x, y, w, h), (full_h, full_w)) for m in small_maps)
            sample_masks = full_masks(small_masks, (x, y, w, h), (full_h, full_w))
        else:
            consensus, variance, entropy, masks_crop, ged = self._vote_maps(samples, crf_image, (h, w), s, step, timings)
            tick = time.perf_counter()
            if (h, w) == (full_h, full_w):
                sample_masks = masks_crop
            else:
                sample_masks = np.zeros((len(samples), full_h, full_w), bool)
                sample_masks[:, y:y + h, x:x + w] = masks_crop
                consensus, variance, entropy = (paste(m, (full_h, full_w), (x, y)) for m in (consensus, variance, entropy))
        small_consensus = cv2.resize(consensus[y:y + h, x:x + w], (crf_w, crf_h), interpolation=cv2.INTER_AREA)
        skin = estimate_skin_tone(crf_image, small_consensus >= 0.5)
        verdict = assess(self.model.config, self.model.malignancy, samples, timesteps, ged, small_consensus)
        timings["summarise"] = timings.get("summarise", 0.0) + time.perf_counter() - tick
        timings["total"] = time.perf_counter() - started
        if progress is not None:
            progress(Progress(total, total, "done", timings["total"]))
        return Analysis(
            consensus_probability=consensus,
            consensus_mask=consensus >= s.threshold,
            variance=variance,
            entropy=entropy,
            sample_masks=sample_masks,
            timesteps=timesteps,
            ged=ged,
            malignancy_probability=verdict.malignancy_probability,
            malignancy_range=verdict.malignancy_range,
            malignancy_withheld=verdict.malignancy_withheld,
            ood_score=verdict.ood_score,
            ood=verdict.ood,
            skin_tone=skin,
            model_id=self.model_id,
            device=self.device,
            settings=s.to_dict(),
            timings={k: round(v, 4) for k, v in timings.items()},
            region=None if region is None else (x, y, w, h),
            seed=seed,
            ged_level=U.ged_level(ged, self.design.ged_cutoffs),
        )

    def _vote_maps(self, samples: list[_Sample], crf_image: np.ndarray, crop_hw, s: AnalysisSettings, step, timings):
        """The "votes" design: every sample refined (DenseCRF), consensus = share of votes.

        Returns crop-sized (consensus, variance, entropy, NxHxW sample masks, GED)."""
        tick = time.perf_counter()
        masks_crop = []
        for i, sample in enumerate(samples):
            step(f"DenseCRF {i + 1}/{len(samples)}" if s.crf else f"mask {i + 1}/{len(samples)}")
            masks_crop.append(self._refine(sample.probability, crf_image, crop_hw, s.crf))
        timings["refine"] = time.perf_counter() - tick
        step("consensus and uncertainty")
        tick = time.perf_counter()
        masks = np.stack(masks_crop)
        # The consensus of N binary samples takes only N + 1 values, so the maps are table
        # look-ups on the vote count: cheap even for a 50-megapixel photo.
        votes = masks.sum(axis=0, dtype=np.uint8)
        levels = np.arange(len(samples) + 1, dtype=np.float32) / len(samples)
        crf_h, crf_w = crf_image.shape[:2]
        ged = U.ged(np.stack([cv2.resize(m.astype(np.uint8), (crf_w, crf_h), interpolation=cv2.INTER_NEAREST)
                              for m in masks_crop]).astype(bool))
        timings["summarise"] = time.perf_counter() - tick
        return levels[votes], (levels * (1.0 - levels))[votes], U.binary_entropy(levels)[votes], masks, ged

    def _soft_maps(self, samples: list[_Sample], crf_image: np.ndarray, s: AnalysisSettings, step, timings):
        """The "soft" design, at the CRF's display-sized resolution.

        consensus: a continuous map, so the threshold slider moves the mask smoothly: the mean of
        the samples' DenseCRF marginals (``design.crf_samples``), or the DenseCRF marginal of the
        mean soft probability. Sample masks and GED: each sample's marginal at 0.5, or each soft
        sample at 0.5 before any refinement. Variance: the predictive variance of the unrefined
        soft samples (:func:`uncertainty.predictive_variance`), 0..0.25, at its maximum where the
        CRF overrode the samples' majority.
        Returns ((consensus, variance, entropy) HxW float32, NxHxW bool sample masks, GED)."""
        crf_h, crf_w = crf_image.shape[:2]
        fill = self.model.config.get("postprocess", {}).get("fill_holes", True)

        def refined(p: np.ndarray) -> np.ndarray:
            q = crf_refine(crf_image, p, self.model.crf) if s.crf else p
            return np.where(fill_holes(q >= 0.5), np.maximum(q, 0.5), q) if fill else q

        tick = time.perf_counter()
        soft = np.stack([cv2.resize(sample.probability, (crf_w, crf_h), interpolation=cv2.INTER_LINEAR)
                         for sample in samples])
        if self.design.crf_samples:
            marginals = []
            for i, p in enumerate(soft):
                step(f"DenseCRF {i + 1}/{len(soft)}" if s.crf else f"mask {i + 1}/{len(soft)}")
                marginals.append(refined(p))
            masks = np.stack(marginals) >= 0.5
            consensus = np.mean(marginals, axis=0)
        else:
            step("DenseCRF on the consensus" if s.crf else "consensus")
            consensus = refined(soft.mean(axis=0))
            masks = soft >= 0.5
            if fill:
                masks = np.stack([fill_holes(m) for m in masks])
        consensus = np.clip(consensus, 0.0, 1.0).astype(np.float32)
        timings["refine"] = time.perf_counter() - tick
        step("consensus and uncertainty")
        tick = time.perf_counter()
        maps = (consensus, U.predictive_variance(soft, consensus >= 0.5), U.binary_entropy(consensus))
        timings["summarise"] = time.perf_counter() - tick
        return maps, masks, U.ged(masks)

    @staticmethod
    def _clip_region(region, full_w: int, full_h: int) -> tuple[int, int, int, int]:
        if region is None:
            return 0, 0, full_w, full_h
        x, y, w, h = (int(round(v)) for v in region)
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(full_w, x + w), min(full_h, y + h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise ValueError(f"the region {region} is too small or outside the {full_w}x{full_h} image")
        return x0, y0, x1 - x0, y1 - y0

    def _sample_probabilities(self, small: np.ndarray, timesteps, method: Method, seed: int) -> list[_Sample]:
        """One noise draw per sample; every sample and label in one batched forward pass.

        Sample i sees the photo in view i mod ``design.views`` (flipped back afterwards) and, with
        ``design.member_per_sample``, is read by probe member i mod K."""
        m, n, dev = self.model, len(timesteps), self.device
        views = [i % max(1, self.design.views) for i in range(n)]
        x0 = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(127.5).sub(1.0)
        x0_views = torch.cat([view(x0, k) for k in views])
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((n, *x0.shape[1:]), generator=gen)
        t = torch.tensor(timesteps, dtype=torch.long)
        x_t = m.schedule.q_sample(x0_views, t, noise)
        want_diffseg = method in (Method.DIFFSEG, Method.FUSED)
        labels = [Label.LESION] + ([Label.HEALTHY] if want_diffseg else [])
        batch = torch.cat([x_t] * len(labels)).to(dev)
        y = torch.cat([torch.full((n,), int(lab), dtype=torch.long) for lab in labels]).to(dev)
        taps = list(m.probe.cfg.blocks) if (m.probe is not None) else []
        eps, features = m.unet(batch, t.repeat(len(labels)).to(dev), y, taps=taps, with_eps=True)
        size = self.working_size
        probe_p, feats = [None] * n, [None] * n
        if m.probe is not None:
            cfg = m.probe.cfg
            lesion_taps = {k: v[:n] for k, v in features.items()}
            gathered = gather_features(lesion_taps, x0_views.to(dev) if cfg.include_rgb else None,
                                       cfg.blocks, cfg.feature_size)
            feats = [unview(gathered[i:i + 1], k) for i, k in enumerate(views)]
            if method in (Method.PROBE, Method.FUSED):
                members = list(range(n)) if self.design.member_per_sample else None
                grid = m.probe.member_probability(gathered, members)[:, None]  # (n, 1, f, f)
                grid = torch.cat([unview(grid[i:i + 1], k) for i, k in enumerate(views)])
                up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)
                probe_p = list(up[:, 0].float().cpu().numpy())
        diff_p = [None] * n
        if want_diffseg:
            valid = field_of_view(small) if m.diffseg.mask_vignette else None
            if m.diffseg.statistic is Statistic.ERROR_DIFFERENCE:
                diff = error_difference(eps[:n], eps[n:], noise)
            else:
                diff = noise_difference(eps[:n], eps[n:])
            diff = [unview(torch.from_numpy(d), k).numpy() for d, k in zip(diff, views)]
            diff_p = [difference_probability(np.ascontiguousarray(d), m.diffseg, valid) for d in diff]
        w = float(m.config.get("fusion_weight", 0.5))
        errors = ood.denoising_error(eps[:n], noise)
        out = []
        for i in range(n):
            if method is Method.DIFFSEG:
                p = diff_p[i]
            elif method is Method.PROBE:
                p = probe_p[i]
            else:
                p = w * probe_p[i] + (1 - w) * diff_p[i]
            out.append(_Sample(np.ascontiguousarray(p, np.float32), feats[i], float(errors[i])))
        return out

    def _refine(self, probability: np.ndarray, crf_image: np.ndarray, crop_hw, use_crf: bool) -> np.ndarray:
        """Working-resolution probability -> crop-sized bool mask (CRF at the CRF resolution)."""
        h, w = crop_hw
        crf_h, crf_w = crf_image.shape[:2]
        p = cv2.resize(probability, (crf_w, crf_h), interpolation=cv2.INTER_LINEAR)
        if use_crf:
            p = crf_refine(crf_image, p, self.model.crf)
        if self.model.config.get("postprocess", {}).get("fill_holes", True):
            p = np.where(fill_holes(p >= 0.5), np.maximum(p, 0.5), p)
        return cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
