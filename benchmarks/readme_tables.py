"""Resumable benchmark results: JSON written so that an interrupted run leaves the previous file whole.

The README blocks themselves (markdown_table, stamp, machine, replace_block) live in
longrag.evaluation.readme_blocks.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def save_json(path: Path, results: dict) -> None:
    """Write results so an interrupted run leaves the previous file whole (resumable benchmarks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)
