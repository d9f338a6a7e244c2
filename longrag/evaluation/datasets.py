"""Datasets by name: the registry of built-in sets and `load_dataset`, which also reads BEIR folders.

The dataset type is in `retrieval_dataset`, the readers in `beir` (folders), `real_sets` (QMSum,
SQuALITY, CUAD) and `synthetic` (passkey, needle); their public names are re-exported here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .beir import load_beir
from .data_files import data_root
from .real_sets import cuad, qmsum, squality
from .retrieval_dataset import RetrievalDataset, Span
from .synthetic import DATASET_NAME as SYNTHETIC_NAME, LENGTHS, TASKS as SYNTHETIC_TASKS

__all__ = ["BUILTIN_NAMES", "LOADERS", "REAL_SETS", "SYNTHETIC_TASKS", "RetrievalDataset", "Span", "cuad",
           "data_root", "load_beir", "load_dataset", "qmsum", "squality"]

# Every built-in dataset by name → its loader, which takes `root=` (the data root) and options.
# Synthetic tasks also need `length=` (or a name like "passkey-4096").
REAL_SETS: dict[str, Callable[..., RetrievalDataset]] = {"qmsum": qmsum, "squality": squality, "cuad": cuad}
LOADERS: dict[str, Callable[..., RetrievalDataset]] = {**REAL_SETS, **SYNTHETIC_TASKS}
BUILTIN_NAMES = tuple(LOADERS)


def load_dataset(name_or_path: str | Path, root: str | Path | None = None, **options) -> RetrievalDataset:
    """A built-in set by name, a synthetic task ("passkey-4096", or "passkey" with length=4096),
    or a BEIR folder path. `options` go to the builder (e.g. split="train", n_docs=50)."""
    key = str(name_or_path)
    name = key
    synthetic_name = SYNTHETIC_NAME.fullmatch(key)
    if synthetic_name:
        name = synthetic_name.group(1)
        options["length"] = int(synthetic_name.group(2))
    elif name in SYNTHETIC_TASKS and "length" not in options:
        raise InputError(f"{name} needs a length in tokens: '{name}-4096' or length=4096 "
                         f"(standard lengths: {', '.join(map(str, LENGTHS))})")
    if name in LOADERS:
        return LOADERS[name](root=root, **options)
    path = Path(key).expanduser()
    if path.exists() or "/" in key or os.sep in key:
        return load_beir(path)
    tasks = list(SYNTHETIC_TASKS)
    raise InputError(f"unknown dataset {key!r}: use one of {', '.join(LOADERS)} "
                     f"({'/'.join(tasks)} as '{tasks[0]}-<tokens>'), or the path of a BEIR folder")
