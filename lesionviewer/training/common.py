"""Small helpers shared by the training commands."""

from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from lesionviewer.engine.device import resolve_device


def hardware_description(device: torch.device | str) -> str:
    """e.g. "AMD EPYC, 2 CPU cores" or "NVIDIA H100 80GB HBM3", for model cards."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPU cores"


def pick_device(name: str) -> torch.device:
    return torch.device(resolve_device(name))


def seed_everything(seed: int, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)


STATE_FILE = "train_state.pt"  # next to the model; models/*/train_state.pt is gitignored


def add_resumable_run_arguments(p) -> None:
    """The options every checkpointed training command shares: device, seed, threads, resume."""
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE_FILE}")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)


def load_training_state(path: Path, model, ema, opt, gen: torch.Generator) -> tuple[int, float, list, list]:
    """Put a checkpoint written by :func:`save_training_state` back into the model, its EMA
    copy, the optimiser and the data generator (tensors only: ``weights_only``, nothing is
    unpickled). Returns (step, seconds trained, loss history, command lines so far)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["rng"])
    # checkpoints from before the command lines were kept have no "commands"
    return (int(state["step"]), float(state["elapsed_s"]), json.loads(state["history"]),
            json.loads(state.get("commands", "[]")))


def save_training_state(path: Path, model, ema, opt, gen: torch.Generator, step: int,
                        elapsed_s: float, history: list, commands: list) -> None:
    """Write what --resume needs, atomically (a temporary file renamed over the old one)."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "rng": gen.get_state(), "step": step, "elapsed_s": elapsed_s,
                "history": json.dumps(history), "commands": json.dumps(commands)}, tmp)
    tmp.replace(path)
