"""Device choice: auto picks what exists; a forced device that is missing says so plainly."""

from __future__ import annotations

import pytest
import torch

from lesionviewer.engine.device import resolve_device


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_is_cpu_without_an_accelerator(cpu_only):
    assert resolve_device("auto") == "cpu"
    assert resolve_device("") == "cpu"


def test_auto_prefers_cuda_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda:0"


def test_auto_gives_a_device_torch_can_use():
    torch.zeros(1, device=resolve_device("auto"))


@pytest.mark.parametrize("name", ["cuda", "cuda:1", "CUDA"])
def test_forcing_cuda_without_a_gpu_is_a_clear_error(cpu_only, name):
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        resolve_device(name)


def test_forcing_mps_without_apple_silicon_is_a_clear_error(cpu_only):
    with pytest.raises(ValueError, match="MPS is not available"):
        resolve_device("mps")


def test_cuda_names_are_normalised_when_a_gpu_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda") == "cuda:0"
    assert resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("name", ["gpu", "tpu", "cpu0"])
def test_unknown_device_names_are_refused(name):
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(name)


def test_cpu_is_always_available(cpu_only):
    assert resolve_device("CPU") == "cpu"
