"""Choosing where the model runs: CUDA, then Apple MPS, then CPU, unless forced."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> str:
    """"auto" -> the best available device; otherwise the name, checked to be usable.

    Raises ValueError with a plain message when a forced device is not available.
    """
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available")
        return name if ":" in name else "cuda:0"
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' asked for, but Apple MPS is not available")
        return name
    if name == "cpu":
        return name
    raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
