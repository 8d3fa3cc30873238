"""A model folder is trusted no further than its checks: the config is sealed by its own digest
and held to a schema, the weights must be finite and give finite outputs on a built-in test
image, and the model id shown to users is safe text that changes with the config."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from lesionviewer.engine.checkpoint import CONFIG_FILE, WEIGHTS_FILE, ModelError, config_digest, save_model
from lesionviewer.engine.model import build_model, load_model

NAN = float("nan")


@pytest.fixture(scope="module")
def tiny_state(tiny_model_dir) -> dict[str, torch.Tensor]:
    return load_model(tiny_model_dir).state_dict()


@pytest.fixture(scope="module")
def tiny_config(tiny_model_dir) -> dict:
    """The tiny model's settings, without what save_model adds."""
    config = json.loads((tiny_model_dir / CONFIG_FILE).read_text())
    return {k: v for k, v in config.items() if k not in ("format", "format_version", "weights", "config_sha256")}


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny model (probe + malignancy head, default method "fused")."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def read(model_dir: Path) -> dict:
    return json.loads((model_dir / CONFIG_FILE).read_text())


def reseal(model_dir: Path, config: dict) -> None:
    """Write ``config`` with a recomputed digest and no other check: an edit made by someone who
    knows the format, so only the schema stands between it and an analysis."""
    config = {k: v for k, v in config.items() if k != "config_sha256"}
    config["config_sha256"] = config_digest(config) if _finite(config) else "0" * 64
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))


def _finite(config) -> bool:
    try:
        json.dumps(config, allow_nan=False)
    except ValueError:
        return False
    return True


def edit(config: dict, path: str, value) -> dict:
    """A copy of config with the dotted ``path`` set to value (``value is DELETE`` removes it)."""
    config = json.loads(json.dumps(config))
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


DELETE = object()

# (setting, absurd value, what the message must say): the 13 and more.
ABSURD = [
    ("probe.members", 10_000_000, r"probe\.members must be an integer from 1 to 64"),
    ("probe.feature_size", 1_000_000, r"probe\.feature_size must be an integer from 2 to 256"),
    ("probe.hidden", True, r"probe\.hidden must be an integer"),
    ("probe.blocks", ["dec9"], r"probe\.blocks names 'dec9'"),
    ("probe.classes", ["skin", "mole"], r"probe\.classes must include 'lesion'"),
    ("crf.max_side", -5, r"crf\.max_side must be an integer from 16 to 4096, not -5"),
    ("crf.max_side", 1e9, r"crf\.max_side must be an integer"),
    ("crf.iterations", 10**9, r"crf\.iterations must be an integer from 1 to 50"),
    ("crf.unary_clip", 0.9, r"crf\.unary_clip must be a finite number in \(0, 0.5\)"),
    ("crf", "on", r"crf must be a JSON object"),
    ("defaults.threshold", NAN, r"defaults\.threshold must be a finite number"),
    ("defaults.threshold", 1.5, r"defaults\.threshold must be a finite number in \(0, 1\]"),
    ("defaults.threshold", 0.0, r"defaults\.threshold must be a finite number in \(0, 1\]"),
    ("defaults.samples", 100_000, r"defaults\.samples must be an integer from 1 to 64"),
    ("defaults.method", "magic", r"defaults\.method must be one of 'diffseg', 'probe', 'fused'"),
    ("defaults.timestep_range", [150, 60], r"timestep_range 150\.\.60 must be ordered"),
    ("defaults.timestep_range", [60, 5000], r"inside the schedule's 0\.\.999"),
    ("schedule.num_timesteps", 10**9, r"schedule\.num_timesteps must be an integer from 21"),
    ("schedule.num_timesteps", "1000", r"schedule\.num_timesteps must be an integer"),
    ("schedule.kind", "quadratic", r"schedule\.kind must be one of 'linear', 'cosine'"),
    ("unet.base_channels", 100_000, r"unet\.base_channels must be an integer from 4 to 256"),
    ("unet.channel_mult", [1] * 50, r"unet\.channel_mult must be a list of 1 to 5 items"),
    ("unet.groups", 7, r"unet\.groups \(7\) must divide"),
    ("unet.attention_levels", [3], r"unet\.attention_levels names level 3, but the UNet has 2 levels"),
    ("unet.depth", 12, r"unet has unknown settings: unet\.depth"),
    ("unet", DELETE, r"the config lacks unet"),
    ("working_size", 1_000_000, r"working_size must be an integer from 16 to 1024"),
    ("working_size", 33, r"working_size \(33\) must be a multiple of 2"),
    ("working_size", 1024, r"self-attention at level 1 would cover 512x512"),
    ("diffseg.smoothing_sigma", float("inf"), r"diffseg\.smoothing_sigma must be a finite number"),
    ("diffseg.statistic", "bogus", r"diffseg\.statistic must be one of"),
    ("fusion_weight", -3, r"fusion_weight must be a finite number in \[0, 1\]"),
    ("name", 12345, r"name must be a text"),
    ("weights.file", "../../outside.safetensors", r"weights\.file has characters that are not allowed"),
    ("ood", 5, r"ood must be a JSON object"),
    ("calibration", {"temperature": NAN}, r"calibration\.temperature must be a finite number"),
    ("probe", None, r"malignancy needs the probe section"),
    ("uncertainty", {"views": 1000}, r"uncertainty\.views must be an integer from 1 to 8"),
    ("trust", {"ged_low": 0.4, "ged_high": 0.1}, r"trust\.ged_low \(0\.4\) must not exceed"),
    ("ood", {"error_timesteps": [60, 1200]}, r"ood\.error_timesteps holds 1200, outside the schedule"),
]


@pytest.mark.parametrize(("setting", "value", "message"), ABSURD, ids=[f"{a[0]}={a[1]!r}"[:40] for a in ABSURD])
def test_an_absurd_config_is_refused_with_one_sentence(model_dir, tiny_state, tmp_path, setting, value, message):
    config = edit(read(model_dir), setting, value)
    # Edited by hand: the recorded digest no longer matches (NaN has no JSON digest: the schema speaks).
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelError, match=f"settings were changed after it was made|{message}"):
        load_model(model_dir)
    # Re-sealed: the schema names the setting, in one line, with no traceback to read.
    reseal(model_dir, config)
    with pytest.raises(ModelError, match=message) as info:
        load_model(model_dir)
    assert "\n" not in str(info.value) and "is not valid" in str(info.value)
    if setting.startswith("weights."):
        return  # save_model writes that part itself
    # And save_model writes no such model.
    with pytest.raises(ModelError, match=message):
        save_model(tmp_path / "never", config, tiny_state)
    assert not (tmp_path / "never").exists()


def test_a_removed_probe_section_does_not_switch_the_method(model_dir):
    config = read(model_dir)
    assert config["defaults"]["method"] == "fused"
    config = {k: v for k, v in config.items() if k not in ("probe", "malignancy")}
    reseal(model_dir, config)
    with pytest.raises(ModelError, match="defaults.method is 'fused', which needs the probe section"):
        load_model(model_dir)


def test_an_edited_config_with_unchanged_weights_is_refused(model_dir):
    before = load_model(model_dir)
    config = read(model_dir)
    config["fusion_weight"] = 0.6  # a plausible value: only the digest tells that it was edited
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    with pytest.raises(ModelError, match="the model's settings were changed after it was made"):
        load_model(model_dir)
    # Whitespace and key order are not changes: the digest is over canonical JSON.
    original = read(model_dir) | {"fusion_weight": before.config["fusion_weight"]}
    (model_dir / CONFIG_FILE).write_text(json.dumps(dict(reversed(list(original.items())))))
    assert load_model(model_dir).model_id == before.model_id


def test_a_model_id_changes_with_the_config_and_only_then(model_dir, tmp_path):
    from lesionviewer.engine.checkpoint import write_config

    model = load_model(model_dir)
    same = tmp_path / "same"
    shutil.copytree(model_dir, same)
    write_config(same, model.config)
    assert load_model(same).model_id == model.model_id
    write_config(same, edit(model.config, "defaults.threshold", 0.6))
    changed = load_model(same)
    assert changed.name == model.name and changed.model_id != model.model_id
    assert changed.config["weights"]["sha256"] == model.config["weights"]["sha256"]


def test_a_nan_threshold_is_refused(model_dir):
    reseal(model_dir, edit(read(model_dir), "defaults.threshold", NAN))
    with pytest.raises(ModelError, match="defaults.threshold must be a finite number, not nan"):
        load_model(model_dir)


def test_optional_sections_of_other_features_are_accepted_open(model_dir, tmp_path):
    config = load_model(model_dir).config | {
        "ood": {"threshold": 0.9, "reference": {"mean": [0.1, 0.2], "method": "mahalanobis"}},
        "trust": {"min_consensus": 0.5}, "calibration": {"temperature": 1.3, "bins": 15},
        "uncertainty": None, "postprocess": {"fill_holes": True},
        "defaults": {**load_model(model_dir).config["defaults"], "ood_check": True},
    }
    save_model(tmp_path / "open", config, load_model(model_dir).state_dict())
    assert load_model(tmp_path / "open").config["ood"]["reference"]["method"] == "mahalanobis"


def test_all_nan_weights_with_a_matching_digest_are_refused(tmp_path, tiny_state, tiny_config):
    config = tiny_config
    save_model(tmp_path / "nan", config, {k: torch.full_like(v, NAN) for k, v in tiny_state.items()})
    with pytest.raises(ModelError, match=r"weights in .* are not finite \(.* holds NaN or infinity\)"):
        load_model(tmp_path / "nan")
    one_inf = dict(tiny_state, **{"unet.stem.weight": torch.full_like(tiny_state["unet.stem.weight"], math.inf)})
    save_model(tmp_path / "inf", config, one_inf)
    with pytest.raises(ModelError, match="unet.stem.weight holds NaN or infinity"):
        load_model(tmp_path / "inf")


@pytest.mark.parametrize(("tensor", "value", "part"), [
    ("unet.out.weight", 3e38, "denoiser"),  # finite weights whose output overflows
    ("probe.feature_std", 0.0, "probe"),  # a probe with a zero feature spread divides by zero
])
def test_finite_weights_with_non_finite_outputs_are_refused(tmp_path, tiny_state, tiny_config, tensor, value, part):
    broken = dict(tiny_state, **{tensor: torch.full_like(tiny_state[tensor], value)})
    save_model(tmp_path / "m", tiny_config, broken)
    with pytest.raises(ModelError, match=f"the model's {part} gives NaN or infinite outputs on the built-in test"):
        load_model(tmp_path / "m")


def test_the_tiny_and_shipped_models_pass_the_output_check(tiny_model_dir):
    load_model(tiny_model_dir)  # raises if the check were too strict for a random model
    shipped = sorted(Path(__file__).resolve().parents[2].glob("models/*/config.json"))
    for config in shipped:
        if json.loads(config.read_text()).get("kind", "analysis") != "analysis":  # tests/training/test_synth.py
            continue
        model = load_model(config.parent)
        assert re.fullmatch(r"[A-Za-z0-9._-]+@[0-9a-f]{8}", model.model_id)


def test_a_name_cannot_inject_text_into_the_model_id(model_dir, tmp_path, tiny_state):
    from lesionviewer.engine.pipeline import Analyzer

    name = "<b>Approved</b>\n\u202eCE-marked @deadbeef \x00 ../" + "x" * 500
    save_model(tmp_path / "m", read(model_dir) | {"name": name}, tiny_state)
    analyzer = Analyzer.from_dir(tmp_path / "m", device="cpu")
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}@[0-9a-f]{8}", analyzer.model_id), analyzer.model_id
    assert analyzer.model_id.count("@") == 1 and analyzer.model_name == analyzer.model_id.split("@")[0]
    assert analyzer.model_name.startswith("b-Approved-b-CE-marked-deadbeef")


def test_a_config_that_is_a_fifo_or_huge_is_refused_without_hanging(model_dir):
    config = model_dir / CONFIG_FILE
    config.write_text(json.dumps(read(model_dir) | {"notes": "x" * (9 << 20)}))
    with pytest.raises(ModelError, match="larger than"):
        load_model(model_dir)
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    config.unlink()
    os.mkfifo(config)
    with pytest.raises(ModelError, match="not a regular file"):
        load_model(model_dir)


def test_a_config_without_its_digest_asks_to_be_resaved(model_dir):
    config = read(model_dir)
    del config["config_sha256"]
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ModelError, match="no recorded config_sha256.*write_config"):
        load_model(model_dir)


def test_the_schema_names_the_engine_choices_and_counts_its_parameters(tiny_config):
    from lesionviewer.engine import config_schema as S
    from lesionviewer.engine.analysis import Method
    from lesionviewer.engine.diffseg import Statistic
    from lesionviewer.engine.schedule import BetaSchedule

    assert set(S.METHODS) == {m.value for m in Method}
    assert set(S.STATISTICS) == {s.value for s in Statistic}
    assert set(S.SCHEDULES) == {b.value for b in BetaSchedule}
    config = tiny_config
    for variant in ({}, {"unet": {**config["unet"], "num_res_blocks": 2, "attention_levels": [0, 1]},
                         "probe": {**config["probe"], "blocks": ["mid", "dec1"], "include_rgb": False}},
                    {"malignancy": None}, {"probe": None, "malignancy": None,
                                           "defaults": {**config["defaults"], "method": "diffseg"}}):
        c = config | variant
        S.validate_config(c)
        built = sum(v.numel() for v in build_model(c).state_dict().values())
        assert S.parameter_count(c) == built, variant


def test_weights_file_outside_the_folder_is_never_read(model_dir, tmp_path):
    outside = tmp_path / "outside.safetensors"
    shutil.copy(model_dir / WEIGHTS_FILE, outside)
    config = read(model_dir)
    reseal(model_dir, config | {"weights": {"file": str(outside), "sha256": config["weights"]["sha256"]}})
    with pytest.raises(ModelError, match="weights.file"):
        load_model(model_dir)
