"""Model files: ``config.json`` + ``model.safetensors`` (+ ``MODEL_CARD.md``) in one folder.

Two SHA-256 digests are recorded in the config and checked at every load: the weights file's
(``weights.sha256``) and the config's own (``config_sha256``, over its canonical JSON without
that field, so it covers the weights' digest too). The config is also checked against
:mod:`lesionviewer.engine.config_schema`. Weights are read with safetensors, so loading never
executes code. Modules are built from the config by builder functions (segment-anything
``build_sam.py``), so loading needs no flags repeated.

The digests detect damage and edits made outside :func:`save_model` / :func:`write_config`;
they are not a signature: whoever can write the folder can also recompute them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lesionviewer.engine.config_schema import (ANALYSIS, SYNTHESIS, ConfigError, WrongModelKind, model_kind,
                                               validate_config)

FORMAT = "lesionviewer-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODEL_ENV = "LESIONVIEWER_MODEL"
CONFIG_HASH_KEY = "config_sha256"
MAX_CONFIG_BYTES = 8 << 20  # a config is a few kB (an OOD fit some hundred); refuse a bomb


class ModelError(Exception):
    """A model folder that cannot be used; the message says why in one sentence."""


class NoModelInstalled(ModelError):
    pass


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys, no spaces) without ``config_sha256``."""
    body = {k: v for k, v in config.items() if k != CONFIG_HASH_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON will read it back (tuples -> lists), so its digest is stable."""
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as e:
        raise ModelError(f"the model config cannot be written as JSON: {e}") from None


def _checked(config: dict[str, Any], where: str, kind: str = ANALYSIS) -> dict[str, Any]:
    try:
        validate_config(config, kind)
    except WrongModelKind as e:
        raise ModelError(f"{where}: {e}") from None
    except ConfigError as e:
        raise ModelError(f"{where} is not valid: {e}") from None
    return config


def write_config(model_dir: str | Path, config: dict[str, Any], kind: str = ANALYSIS) -> str:
    """Validate ``config`` and write it as ``model_dir``'s config.json, sealed with the digest
    of the weights already there and its own. Returns the weights' SHA-256.

    For settings changed after training (e.g. tuned thresholds) without rewriting the weights.
    """
    model_dir = Path(model_dir)
    weights_path = model_dir / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelError(f"model weights missing: {weights_path}")
    digest = sha256_file(weights_path)
    config = _plain(dict(config, format=FORMAT, format_version=FORMAT_VERSION,
                         weights={"file": WEIGHTS_FILE, "sha256": digest}))
    config.pop(CONFIG_HASH_KEY, None)
    _checked(config, "the model config", kind)
    config[CONFIG_HASH_KEY] = config_digest(config)
    _atomic_write_text(model_dir / CONFIG_FILE, json.dumps(config, indent=2, allow_nan=False) + "\n")
    return digest


def save_model(model_dir: str | Path, config: dict[str, Any], state: dict[str, torch.Tensor],
               kind: str = ANALYSIS) -> str:
    """Write weights and config (sealed with both digests) into ``model_dir``; returns the
    weights' SHA-256. An invalid config is refused (ModelError) before anything is written."""
    model_dir = Path(model_dir)
    probe = _plain(dict(config, format=FORMAT, format_version=FORMAT_VERSION,
                        weights={"file": WEIGHTS_FILE, "sha256": "0" * 64}))
    probe.pop(CONFIG_HASH_KEY, None)
    _checked(probe, "the model config", kind)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{WEIGHTS_FILE}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, model_dir / WEIGHTS_FILE)
    return write_config(model_dir, config, kind)


def _read_json(path: Path) -> Any:
    if path.exists() and not path.is_file():
        raise ModelError(f"{path} is not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ModelError(f"{path.parent} is not a lesionviewer model: it has no {CONFIG_FILE}") from None
    except OSError as e:
        raise ModelError(f"{path} cannot be read: {e.strerror or e}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelError(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MB: not a lesionviewer model config")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelError(f"{path} is malformed ({e}); reinstall the model") from None


def read_config(model_dir: str | Path, kind: str = ANALYSIS) -> dict[str, Any]:
    """The config after checking its format, its kind ("analysis" or "synthesis": another kind
    is refused in one sentence), its recorded digest and the schema."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model folder not found: {model_dir}")
    path = model_dir / CONFIG_FILE
    config = _read_json(path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelError(f"{path} is not a lesionviewer model config")
    version = config.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{path} is not a lesionviewer model config (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelError(f"{model_dir} needs a newer lesionviewer (model format {version})")
    if model_kind(config) != kind:
        _checked(config, str(model_dir), kind)
    recorded = config.get(CONFIG_HASH_KEY)
    if not recorded:
        raise ModelError(f"{path} has no recorded {CONFIG_HASH_KEY}: it was made by an older lesionviewer or "
                         "edited by hand; re-save it with lesionviewer.engine.checkpoint.write_config")
    try:
        actual = config_digest(config)
    except ValueError:  # NaN or Infinity: JSON allows neither; the schema says where
        actual = None
    if actual != recorded:
        if actual is None:
            _checked(config, str(path), kind)
        raise ModelError(
            f"the model's settings were changed after it was made: {path} does not match its recorded "
            f"SHA-256; reinstall the model, or re-save it with save_model / write_config")
    return _checked(config, str(path), kind)


def load_weights(model_dir: str | Path, kind: str = ANALYSIS) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, state dict) after checking the config and the weights' SHA-256, and that every
    floating-point weight is finite."""
    model_dir = Path(model_dir)
    config = read_config(model_dir, kind)
    weights = config.get("weights") or {}
    path = model_dir / weights.get("file", WEIGHTS_FILE)
    if not path.is_file():
        raise ModelError(f"model weights missing: {path}")
    expected = weights.get("sha256")
    actual = sha256_file(path)
    if not expected or actual != expected:
        raise ModelError(
            f"model weights {path.name} do not match their recorded SHA-256 "
            f"(expected {expected}, found {actual}): the file is damaged or was replaced"
        )
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a malformed header
        raise ModelError(f"model weights {path} are malformed: {e}") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"model weights in {path} are not finite ({key} holds NaN or infinity): "
                             "the model is broken; retrain or reinstall it")
    return config, state


def _candidate_dirs() -> list[Path]:
    here = Path(__file__).resolve().parents[2]  # the repository (editable install) root
    roots = [here / "models"]
    if getattr(sys, "frozen", False):  # PyInstaller bundle
        roots.insert(0, Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models")
    try:
        import platformdirs

        roots.append(Path(platformdirs.user_data_dir("lesionviewer")) / "models")
    except ImportError:  # platformdirs is a dependency; stay usable without it
        pass
    return roots


def _is_other_kind(model_dir: Path) -> bool:
    """True for a folder holding a synthesis model: never the default analysis model. A damaged
    config is left for read_config to explain."""
    try:
        return model_kind(_read_json(model_dir / CONFIG_FILE)) == SYNTHESIS
    except ModelError:
        return False


def find_default_model() -> Path:
    """The model used when none is named: $LESIONVIEWER_MODEL, else the shipped one.

    Raises NoModelInstalled with a plain explanation when there is none.
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    for root in _candidate_dirs():
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if (d / CONFIG_FILE).is_file() and not _is_other_kind(d):
                return d
    raise NoModelInstalled(
        "No lesionviewer model is installed. Train one with `lesionviewer train backbone` and "
        "`lesionviewer train heads`, or pass --model DIR (a folder with config.json and "
        "model.safetensors)."
    )
