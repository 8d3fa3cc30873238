"""Model files: ``config.json`` + ``model.safetensors`` (+ ``MODEL_CARD.md``) in one folder.

The weights' SHA-256 is recorded in the config and checked at every load; weights are read with
safetensors, so loading never executes code. Modules are built from the config by builder
functions (segment-anything ``build_sam.py``), so loading needs no flags repeated.
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

FORMAT = "lesionviewer-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODEL_ENV = "LESIONVIEWER_MODEL"


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


def save_model(model_dir: str | Path, config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """Write weights and config (with the weights' SHA-256) into ``model_dir``; returns the hash."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{WEIGHTS_FILE}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, model_dir / WEIGHTS_FILE)
    digest = sha256_file(model_dir / WEIGHTS_FILE)
    config = dict(config, format=FORMAT, format_version=FORMAT_VERSION,
                  weights={"file": WEIGHTS_FILE, "sha256": digest})
    _atomic_write_text(model_dir / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return digest


def read_config(model_dir: str | Path) -> dict[str, Any]:
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model folder not found: {model_dir}")
    path = model_dir / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is not a lesionviewer model: it has no {CONFIG_FILE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path} is malformed ({e}); reinstall the model") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelError(f"{path} is not a lesionviewer model config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{model_dir} needs a newer lesionviewer (model format {config['format_version']})")
    return config


def load_weights(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, state dict) after checking the weights' SHA-256 against the config."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
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
            if (d / CONFIG_FILE).is_file():
                return d
    raise NoModelInstalled(
        "No lesionviewer model is installed. Train one with `lesionviewer train backbone` and "
        "`lesionviewer train heads`, or pass --model DIR (a folder with config.json and "
        "model.safetensors)."
    )
