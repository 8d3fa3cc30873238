"""Small helpers shared by the training commands."""

from __future__ import annotations

import random

import numpy as np
import torch

from lesionviewer.engine.device import resolve_device


def pick_device(name: str) -> torch.device:
    return torch.device(resolve_device(name))


def seed_everything(seed: int, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
