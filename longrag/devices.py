"""The one check of a device setting (encoder.device, generator.device): its form, and that this
machine has that device. Run where a model is put on it (encoders/transformer.load_encoder, the
transformers generator)."""
from __future__ import annotations

import torch

from .errors import ConfigError


def check_device(device: str, key: str) -> None:
    kind = device.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{key} must be cpu, cuda, cuda:N or mps, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} is {device!r} but torch sees no CUDA GPU on this machine: set {key}: cpu, "
                          "or install a CUDA build of torch into .venv (README, Quick start)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key} is 'mps' but this machine has no Apple GPU: set {key}: cpu")
