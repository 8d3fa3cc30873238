"""The schema of a model's ``config.json``: types, bounds, required sections, allowed values.

Plain Python (no dependency), pure (no torch), so saving and loading a model can refuse an
absurd or damaged config with ONE sentence naming the setting, instead of a traceback or a
"successful" analysis with nonsense settings (a NaN threshold, ``crf.max_side = -5``, a probe
of 10,000,000 members).

How it reads:

* :data:`SCHEMA` maps every known top-level key to a rule. A rule is a small frozen object
  (:class:`Integer`, :class:`Number`, :class:`Boolean`, :class:`Choice`, :class:`Text`,
  :class:`ListOf`, :class:`Section`) whose ``check(value, where)`` raises :class:`ConfigError`
  with the dotted path of the setting, e.g. ``probe.members must be an integer from 1 to 64``.
* Everywhere in the config (metadata such as ``backbone_training`` too), numbers must be finite
  and nesting shallow: :func:`_check_plain_json`.
* :data:`CROSS_CHECKS` are functions of the whole config for rules that involve several
  settings (the UNet's shape and memory, probe taps that exist, timesteps inside the schedule,
  a default method whose probe is present). They run after the per-setting rules, so they may
  rely on types and ranges.

How to add a rule:

* A new setting in a known section: add ``"key": Integer(lo, hi)`` (or another rule) to that
  section's ``fields``; list it in ``required`` only if every saved model has it.
* A new optional section (uncertainty, OOD, calibration, trust ...): unknown top-level keys are
  accepted already (any keys, finite numbers); list it in :data:`OPEN_SECTIONS` so it must at
  least be a JSON object or null. To bound a key inside it, give it fields:
  ``"ood": open_section(threshold=Number(0, 1))``. Unknown keys in an open section stay
  allowed, so a model saved with a newer key still loads.
* A rule over several settings: write ``def _check_x(config) -> None`` raising ConfigError and
  append it to :data:`CROSS_CHECKS`.

Core sections that the engine builds modules from (``unet``, ``schedule``, ``probe``, ``crf``,
``diffseg``) refuse unknown keys: there, a misspelt key would silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

from lesionviewer.engine.model_size import parameter_count

# Kept as strings here so this module stays torch-free; tests check them against the enums
# (engine.analysis.Method, engine.diffseg.Statistic, engine.schedule.BetaSchedule).
METHODS = ("diffseg", "probe", "fused")
PROBE_METHODS = ("probe", "fused")
STATISTICS = ("abs_difference", "error_difference")
SCHEDULES = ("linear", "cosine")
ATTENTION_HEADS = 4  # engine.unet.SelfAttention's default

MAX_NAME_CHARS = 64
MAX_DEPTH = 8
# Memory bounds (float32 elements per image), so a config cannot make the app allocate
# gigabytes: the shipped model uses 0.3M per feature map and 144 attention tokens.
MAX_FEATURE_MAP = 1 << 23  # channels x height x width of any UNet level
MAX_ATTENTION_TOKENS = 4096  # height x width at a level with self-attention (64 x 64)
MAX_PROBE_ACTIVATIONS = 1 << 24  # members x hidden x feature_size^2
MAX_PARAMETERS = 100_000_000  # 400 MB of float32 weights; the shipped model has 2.9 million


class ConfigError(ValueError):
    """config.json breaks a schema rule; the message names the setting in one sentence."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Integer:
    lo: int
    hi: int
    nullable: bool = False

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not _is_int(value) or not (self.lo <= value <= self.hi):
            raise ConfigError(f"{where} must be an integer from {self.lo} to {self.hi}, not {_show(value)}")


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite number in lo..hi; ``open_lo`` / ``open_hi`` exclude that end."""

    lo: float
    hi: float
    open_lo: bool = False
    open_hi: bool = False
    nullable: bool = False

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        ok = _is_number(value) and math.isfinite(value)
        if ok:
            ok = (value > self.lo if self.open_lo else value >= self.lo) and (
                value < self.hi if self.open_hi else value <= self.hi)
        if not ok:
            span = f"{'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}{')' if self.open_hi else ']'}"
            raise ConfigError(f"{where} must be a finite number in {span}, not {_show(value)}")


@dataclasses.dataclass(frozen=True)
class Boolean:
    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {_show(value)}")


@dataclasses.dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or value not in self.choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, self.choices))}, not {_show(value)}")


@dataclasses.dataclass(frozen=True)
class Text:
    max_chars: int
    pattern: str | None = None  # a full-match regular expression

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not (1 <= len(value) <= self.max_chars):
            raise ConfigError(f"{where} must be a text of 1 to {self.max_chars} characters, not {_show(value)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ConfigError(f"{where} has characters that are not allowed: {_show(value)}")


@dataclasses.dataclass(frozen=True)
class ListOf:
    item: Any
    min_len: int
    max_len: int
    unique: bool = False

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, (list, tuple)) or not (self.min_len <= len(value) <= self.max_len):
            raise ConfigError(f"{where} must be a list of {self.min_len} to {self.max_len} items, not {_show(value)}")
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]")
        if self.unique and len({repr(v) for v in value}) != len(value):
            raise ConfigError(f"{where} lists an item twice: {_show(value)}")


@dataclasses.dataclass(frozen=True)
class Section:
    """A JSON object: known ``fields`` checked by their rules, ``required`` keys present,
    unknown keys refused unless ``open``; ``nullable`` allows null (a part the model lacks)."""

    fields: dict[str, Any]
    required: frozenset[str] = frozenset()
    open: bool = False
    nullable: bool = False

    def check(self, value: Any, where: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{where or 'the config'} must be a JSON object, not {_show(value)}")
        prefix = f"{where}." if where else ""
        missing = sorted(self.required - value.keys())
        if missing:
            raise ConfigError(f"{where or 'the config'} lacks {', '.join(prefix + k for k in missing)}")
        if not self.open:
            unknown = sorted(set(value) - set(self.fields))
            if unknown:
                raise ConfigError(f"{where} has unknown settings: {', '.join(prefix + k for k in unknown)}")
        for key, rule in self.fields.items():
            if key in value:
                rule.check(value[key], prefix + key)


def open_section(**fields: Any) -> Section:
    """An optional section other features own: any keys (finite numbers), the named ones bounded."""
    return Section(fields, open=True, nullable=True)


HEX64 = Text(64, r"[0-9a-f]{64}")
UNET = Section(
    {
        "in_channels": Choice((3,)),  # the pipeline feeds RGB
        "base_channels": Integer(4, 256),
        "channel_mult": ListOf(Integer(1, 8), 1, 5),
        "num_res_blocks": Integer(1, 4),
        "attention_levels": ListOf(Integer(0, 4), 0, 5, unique=True),
        "num_classes": Integer(3, 16),  # labels healthy, lesion, null (engine.unet.Label)
        "groups": Integer(1, 64),
        "dropout": Number(0, 1, open_hi=True),
    },
    required=frozenset({"in_channels", "base_channels", "channel_mult", "num_res_blocks", "attention_levels",
                        "num_classes", "groups"}),
)
SCHEDULE = Section(
    {"kind": Choice(SCHEDULES), "num_timesteps": Integer(21, 10_000)},  # linear needs >= 21 steps
    required=frozenset({"kind", "num_timesteps"}),
)
DIFFSEG = Section({
    "smoothing_sigma": Number(0, 64),
    "threshold": Number(-1, 1, nullable=True),  # on the scaled statistic (-1..1 signed, 0..1 abs); null: Otsu
    "fill_holes": Boolean(),
    "mask_vignette": Boolean(),
    "statistic": Choice(STATISTICS),
    "fov_margin": Integer(0, 256),
    "closing": Integer(0, 256),
    "largest_only": Boolean(),
    "hull": Boolean(),
})
PROBE = Section(
    {
        "blocks": ListOf(Text(16, r"dec[0-9]|mid"), 1, 6, unique=True),
        "include_rgb": Boolean(),
        "feature_size": Integer(2, 256),
        "hidden": Integer(1, 512),
        "members": Integer(1, 64),
        "classes": ListOf(Text(32), 2, 8, unique=True),
        "in_channels": Integer(0, 100_000),  # recomputed by the builder from the taps
    },
    nullable=True,
)
MALIGNANCY = Section({"hidden": Integer(1, 1024)}, open=True, nullable=True)
CRF = Section({
    "iterations": Integer(1, 50),
    "max_side": Integer(16, 4096),  # the resolution DenseCRF reads
    "gaussian_sxy": Number(0, 1000, open_lo=True),
    "gaussian_compat": Number(0, 100),
    "bilateral_sxy": Number(0, 1000, open_lo=True),
    "bilateral_srgb": Number(0, 1000, open_lo=True),
    "bilateral_compat": Number(0, 100),
    "unary_clip": Number(0, 0.5, open_lo=True, open_hi=True),
})
DEFAULTS = Section(
    {
        "method": Choice(METHODS),
        "samples": Integer(1, 64),
        "timestep_range": ListOf(Integer(0, 9_999), 2, 2),
        "crf": Boolean(),
        "threshold": Number(0, 1, open_lo=True),  # consensus >= 0 would mark the whole photo
    },
    open=True,
)
# Optional sections that other features add (uncertainty, OOD, calibration, trust) or that the
# pipeline reads with defaults (postprocess): validated when present, unknown keys allowed.
OPEN_SECTIONS: dict[str, Section] = {
    "postprocess": open_section(fill_holes=Boolean()),
    # engine.pipeline.SamplingDesign; GED cut-offs on the sample diversity, which lies in 0..1
    "uncertainty": open_section(views=Integer(1, 8), member_per_sample=Boolean(), soft=Boolean(),
                                crf_samples=Boolean()),
    "trust": open_section(ged_low=Number(0, 1), ged_high=Number(0, 1)),
    "ood": open_section(percentile=Number(0, 100, open_lo=True), cutoff=Number(-1e12, 1e12),
                        error_timesteps=ListOf(Integer(0, 9_999), 0, 64)),
    "calibration": open_section(),
    "malignancy_calibration": open_section(),  # engine.malignancy checks its own ranges when used
}
SCHEMA = Section(
    {
        "kind": Choice(("analysis",)),  # absent in analysis models; see SYNTHESIS_SCHEMA
        "name": Text(1000),  # free text; engine.config_schema.safe_model_name makes it shown safely
        "working_size": Integer(16, 1024),
        "unet": UNET,
        "schedule": SCHEDULE,
        "diffseg": DIFFSEG,
        "probe": PROBE,
        "malignancy": MALIGNANCY,
        "fusion_weight": Number(0, 1),
        "crf": CRF,
        "defaults": DEFAULTS,
        "format": Text(64),
        "format_version": Integer(1, 1_000_000),
        "weights": Section({"file": Text(200, r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.safetensors"), "sha256": HEX64},
                           open=True),
        "config_sha256": HEX64,
        **OPEN_SECTIONS,
    },
    required=frozenset({"name", "working_size", "unet", "schedule", "diffseg", "crf", "defaults"}),
    open=True,  # metadata such as backbone_training and heads_training
)
# A synthesis model (lesionviewer.training.synth, `lesionviewer train synth`) makes training
# pairs from masks; it shares the UNet and schedule rules but is a different kind of folder, so
# the analysis never loads it by accident (and `lesionviewer synth` never loads an analysis model).
SYNTHESIS_SCHEMA = Section(
    {
        "kind": Choice(("synthesis",)),
        "name": Text(1000),
        "working_size": Integer(16, 1024),
        "unet": UNET,
        "schedule": SCHEDULE,
        "control": open_section(hint_channels=ListOf(Integer(1, 256), 1, 5), mask_channels=Choice((1,))),
        "conditions": open_section(tone=Boolean(), diagnosis=Boolean()),
        "sampling": open_section(steps=Integer(1, 1000), guidance=Number(0, 50)),
        "format": Text(64),
        "format_version": Integer(1, 1_000_000),
        "weights": SCHEMA.fields["weights"],
        "config_sha256": HEX64,
    },
    required=frozenset({"kind", "name", "working_size", "unet", "schedule", "control"}),
    open=True,  # metadata such as synthesis_training
)
ANALYSIS, SYNTHESIS = "analysis", "synthesis"
KIND_REFUSALS = {
    (ANALYSIS, SYNTHESIS): "this is a synthesis model (it makes training images from masks with `lesionviewer "
                           "synth`), not an analysis model; choose an analysis model such as lesionviewer-ddpm-s96",
    (SYNTHESIS, ANALYSIS): "this is an analysis model, not a synthesis model; `lesionviewer synth` needs a model "
                           "made by `lesionviewer train synth`, such as lesionviewer-synth-s96",
}


def _check_plain_json(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where or 'the config'} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, not {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain_json(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain_json(item, f"{where}[{i}]", depth + 1)


def _check_unet(config: dict) -> None:
    unet, size = config["unet"], config["working_size"]
    levels = len(unet["channel_mult"])
    channels = [unet["base_channels"] * m for m in unet["channel_mult"]]
    for level in unet["attention_levels"]:
        if level >= levels:
            raise ConfigError(f"unet.attention_levels names level {level}, but the UNet has {levels} levels")
    for ch in [unet["base_channels"], *channels]:
        if ch % unet["groups"]:
            raise ConfigError(f"unet.groups ({unet['groups']}) must divide every level's channels ({ch})")
        if ch > 1024:
            raise ConfigError(f"unet channels must stay at most 1024 per level, not {ch}")
    stride = 2 ** (levels - 1)
    if size % stride:
        raise ConfigError(f"working_size ({size}) must be a multiple of {stride} for a {levels}-level UNet")
    for level, ch in enumerate(channels):
        side = size // 2**level
        if ch * side * side > MAX_FEATURE_MAP:
            raise ConfigError(f"working_size {size} with {ch} channels at level {level} needs too much memory")
        if level in unet["attention_levels"]:
            if side * side > MAX_ATTENTION_TOKENS:
                raise ConfigError(f"self-attention at level {level} would cover {side}x{side} positions; "
                                  f"at most {MAX_ATTENTION_TOKENS} are allowed")
            if ch % ATTENTION_HEADS:
                raise ConfigError(f"level {level} has {ch} channels; attention needs a multiple of {ATTENTION_HEADS}")


def _check_size(config: dict) -> None:
    count = parameter_count(config)
    if count > MAX_PARAMETERS:
        raise ConfigError(f"the model would have {count:,} parameters; at most {MAX_PARAMETERS:,} are allowed")


def _check_probe(config: dict) -> None:
    probe = config.get("probe")
    if probe is None:
        if config.get("malignancy") is not None:
            raise ConfigError("malignancy needs the probe section, which is missing")
        return
    levels = len(config["unet"]["channel_mult"])
    taps = {f"dec{i}" for i in range(levels)} | {"mid"}
    for block in probe.get("blocks", ()):
        if block not in taps:
            raise ConfigError(f"probe.blocks names {block!r}, which this UNet lacks (it has {', '.join(sorted(taps))})")
    if "classes" in probe and "lesion" not in probe["classes"]:
        raise ConfigError("probe.classes must include 'lesion'")
    members, hidden, size = probe.get("members", 5), probe.get("hidden", 32), probe.get("feature_size", 48)
    if members * hidden * size * size > MAX_PROBE_ACTIVATIONS:
        raise ConfigError(f"probe of {members} members x {hidden} hidden at {size}x{size} needs too much memory")


def _check_trust(config: dict) -> None:
    trust = config.get("trust") or {}
    if "ged_low" in trust and "ged_high" in trust and trust["ged_low"] > trust["ged_high"]:
        raise ConfigError(f"trust.ged_low ({trust['ged_low']}) must not exceed trust.ged_high ({trust['ged_high']})")


def _check_defaults(config: dict) -> None:
    defaults = config["defaults"]
    method = defaults.get("method", "diffseg")
    if method in PROBE_METHODS and config.get("probe") is None:
        raise ConfigError(f"defaults.method is {method!r}, which needs the probe section, but the config has none")
    steps = config["schedule"]["num_timesteps"]
    for t in (config.get("ood") or {}).get("error_timesteps", ()):
        if t >= steps:
            raise ConfigError(f"ood.error_timesteps holds {t}, outside the schedule's 0..{steps - 1}")
    if "timestep_range" in defaults:
        lo, hi = defaults["timestep_range"]
        if not (lo <= hi < steps):
            raise ConfigError(f"defaults.timestep_range {lo}..{hi} must be ordered and inside the "
                              f"schedule's 0..{steps - 1}")


CROSS_CHECKS: list[Callable[[dict], None]] = [_check_unet, _check_probe, _check_defaults, _check_trust, _check_size]


class WrongModelKind(ConfigError):
    """An analysis model where a synthesis model is needed, or the other way round."""


def model_kind(config: Any) -> str:
    """"analysis" (also when the config has no ``kind``, as every analysis model) or the
    config's ``kind``."""
    return config.get("kind", ANALYSIS) if isinstance(config, dict) else ANALYSIS


def validate_config(config: Any, kind: str = ANALYSIS) -> None:
    """Raise ConfigError naming the first broken rule; return None when the config is sound.

    ``kind``: the kind of model the caller needs; another kind raises WrongModelKind."""
    _check_plain_json(config, "")
    found = model_kind(config)
    if found != kind and isinstance(found, str) and (kind, found) in KIND_REFUSALS:
        raise WrongModelKind(KIND_REFUSALS[(kind, found)])
    if kind == SYNTHESIS:
        SYNTHESIS_SCHEMA.check(config, "")
        for check in (_check_unet, _check_size):
            check(config)
        return
    SCHEMA.check(config, "")
    for check in CROSS_CHECKS:
        check(config)


def safe_model_name(name: Any) -> str:
    """The config's name as it may be shown: [A-Za-z0-9._-] only, at most MAX_NAME_CHARS,
    so no arbitrary text (markup, control characters, a forged "@hash") reaches the UI."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")[:MAX_NAME_CHARS].strip("-.")
    return text or "unnamed"
