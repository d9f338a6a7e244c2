"""Reading a model folder written by `longrag tune-positions` (see `tuning`): its metadata and its
tuned position rows, refused when they do not fit the model they are loaded with."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import ConfigError

TUNING_FILE = "longrag_tuning.json"  # base model, its fingerprint, length, held-out report
ROWS_FILE = "longrag_positions.safetensors"  # the tuned extended rows
FORMAT = 1


def tuning_info(folder: str | Path) -> dict | None:
    """The metadata of a folder written by `tune-positions` (None for an ordinary model folder)."""
    path = Path(folder) / TUNING_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def model_fingerprint(model) -> str:
    """A short hash of the weights that define a base model (original positions, embeddings, first layer).

    Enough to tell base models apart; cheap enough to check at every load.
    """
    digest = hashlib.sha256()
    emb = model.embeddings
    tensors = [emb.position_embeddings.weight[:512], emb.word_embeddings.weight[:2048], emb.LayerNorm.weight]
    first = next(iter(model.encoder.layer)) if hasattr(model, "encoder") else None
    if first is not None:
        tensors += [p for _, p in sorted(first.named_parameters())][:4]
    for tensor in tensors:
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def tuned_rows(model, method: str, target_length: int | None, max_positions: int) -> torch.Tensor | None:
    """The tuned extended rows for `model` if it was loaded from a tuned folder, else None.

    Refuses (ConfigError) a table tuned on another base model, for another length, or for a method
    other than PI: those rows would silently mean something else.
    """
    folder = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", "")
    info = tuning_info(folder) if folder and Path(folder).is_dir() else None
    if info is None:
        return None
    if method != "pi":
        raise ConfigError(f"{folder} holds positions tuned from PI; set encoder.document_method: pi "
                          f"(got {method!r})")
    if target_length != info["length"]:
        raise ConfigError(f"{folder} holds positions tuned for {info['length']} tokens; set "
                          f"encoder.target_length: {info['length']} (got {target_length})")
    found = model_fingerprint(model)
    if found != info["base_fingerprint"]:
        raise ConfigError(f"{folder}: its tuned position table was trained on base model {info['base']!r} "
                          f"(fingerprint {info['base_fingerprint']}), not on the weights in this folder "
                          f"(fingerprint {found}); tune again with --base for this model")
    rows = load_file(str(Path(folder) / ROWS_FILE))["rows"]
    hidden = model.embeddings.position_embeddings.weight.shape[1]
    if tuple(rows.shape) != (info["length"], hidden) or info["original_positions"] != max_positions:
        raise ConfigError(f"{folder}: tuned table of shape {tuple(rows.shape)} does not fit this model "
                          f"({hidden} dims, {max_positions} original positions)")
    return rows


__all__ = ["TUNING_FILE", "ROWS_FILE", "FORMAT", "tuning_info", "model_fingerprint", "tuned_rows"]
