"""Turn `--dataset` names into datasets: built-in sets, BEIR folders, synthetic tasks per length."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .datasets import LOADERS, REAL_SETS, SYNTHETIC_TASKS, load_dataset
from .synthetic import synthetic_suite

DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192)


def build_datasets(names: str, *, limit: int | None, lengths=DEFAULT_LENGTHS, n_docs: int = 50,
                   count_tokens=None, data_root: Path | None = None, seed: int = 0) -> list:
    datasets = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name in SYNTHETIC_TASKS:
            n_queries = min(limit or 50, n_docs)
            suite = synthetic_suite(name, lengths, n_docs=n_docs, n_queries=n_queries, seed=seed, count_tokens=count_tokens)
            datasets += list(suite.values())
            continue
        if name not in REAL_SETS and not Path(name).exists():
            raise InputError(f"unknown dataset {name!r}; valid: {', '.join(LOADERS)} or a BEIR folder path")
        dataset = load_dataset(name, root=data_root)
        datasets.append(dataset.limit(limit, seed) if limit else dataset)
    if not datasets:
        raise InputError("no dataset given")
    return datasets
