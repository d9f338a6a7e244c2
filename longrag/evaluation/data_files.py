"""Where the evaluation data lives and how its JSONL files are read.

The real sets (QMSum, SQuALITY, CUAD) and the haystack prose of the synthetic tasks are read in
place from the data root; the project ships no copy of them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from ..errors import InputError


def data_root() -> Path:
    """`$LONGRAG_DATA`, else the `shared/data` folder next to the repository checkout."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return Path(os.environ.get("LONGRAG_DATA", default))


def data_file(root: str | Path | None, relative: str) -> Path:
    """`relative` under `root` (default: `data_root()`); `InputError` naming what is missing."""
    base = Path(root) if root is not None else data_root()
    if not base.is_dir():
        raise InputError(f"data root {base} does not exist; set LONGRAG_DATA to the folder holding "
                         f"qmsum/, squality/ and cuad/")
    path = base / relative
    if not path.is_file():
        raise InputError(f"{relative} not found under data root {base}")
    return path


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; bad JSON names the file and line."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row
