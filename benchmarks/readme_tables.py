"""What the benchmarks write into the project's own docs: markdown tables, the measurement stamp,
`<!-- name:start -->…<!-- name:end -->` blocks of README.md and docs/results.md, and resumable JSON
results (an interrupted run leaves the previous file whole).

Benchmark code, not part of the installed package: the scripts in benchmarks/ import it as
`readme_tables` (their own folder is on sys.path when run as `python benchmarks/NAME.py`).
"""
from __future__ import annotations

import json
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the repository checkout
README = REPO / "README.md"
RESULTS = REPO / "docs" / "results.md"  # where the benchmark scripts write their measurement blocks


def save_json(path: Path, results: dict) -> None:
    """Write results so an interrupted run leaves the previous file whole (resumable benchmarks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)


def machine() -> str:
    """CPU model, core count and OS of this machine, as the stamps name it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def stamp(versions: dict) -> str:
    """The italic line under a table: when, on which machine, with which library versions."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    libs = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"_Measured {when} on {machine()}; {libs}._"


def replace_block(name: str, body: str, readme: Path = README) -> None:
    """Put body between `<!-- name:start -->` and `<!-- name:end -->`, appending the block if absent."""
    text = readme.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def runs_per_machine(path: Path, result: dict | None = None) -> list[dict]:
    """The runs a benchmark saved in `path`, one per machine; `result` (a new run with a "machine"
    key) replaces its own machine's run and is saved, the other machines' rows are kept."""
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    if result is not None:
        runs = [r for r in runs if r["machine"] != result["machine"]] + [result]
        path.write_text(json.dumps({"runs": runs}, indent=1))
    return runs


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
