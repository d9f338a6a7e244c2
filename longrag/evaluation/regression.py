"""`longrag eval`: the regression matrix — condition × dataset → expected metric ± tolerance.

One YAML (benchmarks/regression.yaml) holds the expectations; the checker runs the needed cells
through the comparison harness (same code as `longrag compare`) and prints OK / FAIL per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import Config
from ..encoders.transformer import token_counter
from ..errors import InputError
from .compare import compare
from .conditions import parse_conditions
from .suite import build_datasets


@dataclass(frozen=True)
class Row:
    condition: str
    dataset: str  # as the harness names it: squality, qmsum, passkey-1024, ...
    metric: str
    expected: float
    tolerance: float
    measured: float | None = None

    @property
    def ok(self) -> bool:
        return self.measured is not None and abs(self.measured - self.expected) <= self.tolerance


def load_slice(path: Path, name: str) -> tuple[dict, list[Row]]:
    if not path.is_file():
        raise InputError(f"regression file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    slices = data.get("slices", {})
    if name not in slices:
        raise InputError(f"unknown slice {name!r} in {path}; valid: {', '.join(slices)}")
    spec = slices[name]
    rows = [Row(r["condition"], r["dataset"], r["metric"], float(r["expected"]), float(r["tolerance"]))
            for r in spec["rows"]]
    return spec.get("options", {}), rows


def run_slice(path: Path, name: str, base: Config, out: Path, progress: bool = True) -> list[Row]:
    options, rows = load_slice(path, name)
    sources = sorted({r.dataset.split("-")[0] for r in rows})
    datasets = build_datasets(",".join(sources), limit=options.get("limit"),
                              lengths=tuple(options.get("lengths", (512,))), n_docs=options.get("docs", 50),
                              count_tokens=_counter(base))
    wanted = {r.dataset for r in rows}
    datasets = [d for d in datasets if d.name in wanted]
    conditions = parse_conditions(",".join(dict.fromkeys(r.condition for r in rows)))
    cells = {(c.dataset, c.condition): c for c in compare(datasets, conditions, base, out, progress)}
    measured = []
    for r in rows:
        cell = cells.get((r.dataset, r.condition))
        value = cell.metrics.get(r.metric) if cell else None
        measured.append(Row(r.condition, r.dataset, r.metric, r.expected, r.tolerance, value))
    return measured


def _counter(base: Config):
    return token_counter(base.encoder)


def rows_table(rows: list[Row]) -> str:
    lines = ["| condition | dataset | metric | expected | measured | status |", "|---|---|---|---|---|---|"]
    for r in rows:
        got = f"{100 * r.measured:.1f}" if r.measured is not None else "missing"
        lines.append(f"| {r.condition} | {r.dataset} | {r.metric} | {100 * r.expected:.1f} ± {100 * r.tolerance:.1f} "
                     f"| {got} | {'OK' if r.ok else 'FAIL'} |")
    return "\n".join(lines)
