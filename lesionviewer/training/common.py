"""Small helpers shared by the training commands."""

from __future__ import annotations

import os
import platform
import random

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
