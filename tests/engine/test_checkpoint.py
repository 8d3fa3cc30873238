"""Model folders: safe, hash-checked loading with one clear sentence when a folder is unusable.

The config's own digest (``config_sha256``) is checked first, so the tests below that damage a
config on purpose re-seal it (:func:`rewrite_config` with ``reseal=True``), as someone who
recomputes the digest would, to reach the check behind it. tests/engine/test_model_trust.py
covers the digest, the schema and the output check themselves."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from lesionviewer.engine import checkpoint
from lesionviewer.engine.checkpoint import (
    CONFIG_FILE,
    MODEL_ENV,
    WEIGHTS_FILE,
    ModelError,
    NoModelInstalled,
    config_digest,
    find_default_model,
    load_weights,
    save_model,
    sha256_file,
)
from lesionviewer.engine.defaults import default_model_config
from lesionviewer.engine.model import build_model, load_model


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny model that a test may damage."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def reseal(model_dir: Path, config: dict) -> None:
    """Write ``config`` with a recomputed config_sha256 and no other check."""
    config = dict(config)
    config["config_sha256"] = config_digest(config)
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))


def rewrite_config(model_dir: Path, reseal_it: bool = False, **changes) -> None:
    path = model_dir / CONFIG_FILE
    config = json.loads(path.read_text())
    config.update(changes)
    if reseal_it:
        reseal(model_dir, config)
    else:
        path.write_text(json.dumps(config))


class WritesMarker:
    """Unpickling this creates a file: proof that code in a weights file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    config = default_model_config("round-trip", working_size=16, base_channels=8)
    config["unet"].update(channel_mult=[1, 2], attention_levels=[1], groups=4)
    config["probe"] = {"blocks": ["dec0"], "hidden": 4, "members": 2}
    config["malignancy"] = {"hidden": 4}
    model = build_model(config)
    assert model.probe is not None and model.malignancy is not None
    digest = save_model(tmp_path / "m", model.config, model.state_dict())
    assert digest == sha256_file(tmp_path / "m" / WEIGHTS_FILE)
    loaded = load_model(tmp_path / "m")
    assert loaded.config["weights"]["sha256"] == digest
    assert loaded.config["config_sha256"] == config_digest(loaded.config)
    assert loaded.model_id == f"round-trip@{loaded.config['config_sha256'][:8]}"
    saved, restored = model.state_dict(), loaded.state_dict()
    assert saved.keys() == restored.keys()
    for key in saved:
        assert torch.equal(saved[key], restored[key]), key
    assert not loaded.unet.training  # loaded models are ready for inference
    assert not list(tmp_path.joinpath("m").glob(".*tmp"))  # no temporary files left


def test_a_flipped_byte_in_the_weights_is_refused(model_dir):
    path = model_dir / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        load_weights(model_dir)


def test_a_pickle_posing_as_safetensors_is_refused_and_never_run(model_dir, tmp_path):
    payload = pickle.dumps({"unet.out.weight": WritesMarker(tmp_path / "control")})
    pickle.loads(payload)  # the payload does run when unpickled ...
    assert (tmp_path / "control").exists()

    marker = tmp_path / "pwned"
    payload = pickle.dumps({"unet.out.weight": WritesMarker(marker)})
    (model_dir / WEIGHTS_FILE).write_bytes(payload)
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(model_dir)
    # ... and even with its hash recorded, safetensors reads it as data, not code.
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    rewrite_config(model_dir, reseal_it=True,
                   weights={**config["weights"], "sha256": sha256_file(model_dir / WEIGHTS_FILE)})
    with pytest.raises(ModelError, match="malformed"):
        load_model(model_dir)
    assert not marker.exists()


def test_malformed_config_is_a_model_error(model_dir):
    (model_dir / CONFIG_FILE).write_text('{"format": "lesionviewer-model", ')
    with pytest.raises(ModelError, match="malformed"):
        load_model(model_dir)


def test_a_config_of_something_else_is_a_model_error(model_dir):
    (model_dir / CONFIG_FILE).write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(ModelError, match="not a lesionviewer model"):
        load_model(model_dir)


def test_a_newer_format_asks_for_a_newer_lesionviewer(model_dir):
    rewrite_config(model_dir, format_version=99)
    with pytest.raises(ModelError, match="newer lesionviewer"):
        load_model(model_dir)


def test_weights_that_do_not_fit_the_config_are_a_model_error(model_dir):
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    rewrite_config(model_dir, reseal_it=True, unet={**config["unet"], "base_channels": 16})
    with pytest.raises(ModelError, match="do not fit"):
        load_model(model_dir)


def test_a_config_missing_its_unet_is_a_model_error(model_dir):
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    del config["unet"]
    reseal(model_dir, config)
    with pytest.raises(ModelError, match="not valid.*lacks unet"):
        load_model(model_dir)


def test_missing_folder_config_or_weights_are_model_errors(model_dir, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(empty)
    (model_dir / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match="weights missing"):
        load_model(model_dir)


def test_find_default_model_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "chosen"))
    monkeypatch.setattr(checkpoint, "_candidate_dirs", lambda: [])
    assert find_default_model() == tmp_path / "chosen"


def test_find_default_model_takes_the_first_installed_model(monkeypatch, tmp_path, tiny_model_dir):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    bundled, user = tmp_path / "bundle" / "models", tmp_path / "user" / "models"
    (user / "not-a-model").mkdir(parents=True)
    shutil.copytree(tiny_model_dir, user / "tiny")
    monkeypatch.setattr(checkpoint, "_candidate_dirs", lambda: [bundled, user])
    assert find_default_model() == user / "tiny"


def test_no_model_installed_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_ENV, "")
    (tmp_path / "models" / "half-copied").mkdir(parents=True)
    monkeypatch.setattr(checkpoint, "_candidate_dirs", lambda: [tmp_path / "models", tmp_path / "missing"])
    with pytest.raises(NoModelInstalled) as info:
        find_default_model()
    assert isinstance(info.value, ModelError)
    message = str(info.value)
    assert "No lesionviewer model is installed" in message
    assert "--model" in message and "lesionviewer train" in message
