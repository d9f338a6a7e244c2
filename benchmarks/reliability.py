"""Kill -9 sweep: interrupt `longrag index` updates at random moments, with the real packaged
encoder on the licence texts of examples/contracts, and check after every kill that the index
is one whole generation (old or new), then that the next run leaves no debris and equals a
clean build.

    .venv/bin/python benchmarks/reliability.py --trials 50

Writes benchmarks/results/reliability.json and the `reliability` block of docs/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from longrag import Pipeline
from longrag.index import IndexStore
from longrag.index.layout import CURRENT, LOCK
from longrag.indexing import library_versions

from readme_tables import REPO, replace_block, save_json, stamp

CONTRACTS = REPO / "examples" / "contracts"
OUT = REPO / "benchmarks" / "results" / "reliability.json"
DOC = REPO / "docs" / "reliability.md"
QUERIES = ["what happens to my patent licence if I sue", "trademark use", "warranty disclaimer",
           "which law governs this agreement", "attribution notice in copies"]


def index_cmd(docs: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "longrag.cli", "index", str(docs), "--index", str(index), "--quiet"]


def whole(index: Path) -> tuple[frozenset, int]:
    """(documents, segments) of the live generation; raises if it is not whole."""
    store = IndexStore(index)
    documents = store.documents()
    segments = sum(len(store.segments_of(doc_id)[0]) for doc_id in documents)
    assert segments == store.segment_count, "segments missing from the store"
    return frozenset(documents), segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="longrag-reliability-"))
    docs, index = work / "docs", work / "index"
    names = sorted(p.name for p in CONTRACTS.glob("*.txt"))
    docs.mkdir()
    for name in names[:12]:
        shutil.copy(CONTRACTS / name, docs / name)
    subprocess.run(index_cmd(docs, index), check=True)
    began = time.perf_counter()
    for name in names[12:]:  # the update every trial interrupts: ten more licences
        shutil.copy(CONTRACTS / name, docs / name)
    subprocess.run(index_cmd(docs, index), check=True)
    full_run = time.perf_counter() - began
    states = {"old": frozenset(names[:12]), "new": frozenset(names)}

    outcomes = {"old": 0, "new": 0}
    corrupt, debris_seen = [], 0
    for trial in range(args.trials):
        keep = names[:12] if trial % 2 == 0 else names  # alternate shrinking and growing the folder
        for name in names[12:]:
            (docs / name).unlink(missing_ok=True)
        for name in keep[12:]:
            shutil.copy(CONTRACTS / name, docs / name)
        before = whole(index)[0]
        run = subprocess.Popen(index_cmd(docs, index), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, full_run * 1.2))
        run.send_signal(signal.SIGKILL)
        run.wait()
        try:
            after = whole(index)[0]
            if after not in (before, frozenset(keep)):
                corrupt.append(f"trial {trial}: documents match neither the old nor the new folder")
            outcomes["new" if after == frozenset(keep) and after != before else "old"] += 1
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            corrupt.append(f"trial {trial}: {type(exc).__name__}: {exc}")
        debris_seen += sum(1 for p in index.iterdir() if p.name.endswith(".tmp"))
        # the next run, uninterrupted, finishes the update
    subprocess.run(index_cmd(docs, index), check=True)
    left = sorted(p.name for p in index.iterdir() if p.name not in (CURRENT, LOCK))
    clean = work / "clean"
    subprocess.run(index_cmd(docs, clean), check=True)
    same = all(Pipeline.load(index).search(q) == Pipeline.load(clean).search(q) for q in QUERIES)
    result = {
        "trials": args.trials, "corrupt": corrupt, "outcomes": outcomes, "full_update_seconds": round(full_run, 1),
        "debris_after_kills": debris_seen, "entries_left_after_next_run": left,
        "next_run_equals_clean_build": same and whole(index) == whole(clean),
        "documents": {k: len(v) for k, v in states.items()},
        "versions": library_versions(), "stamp": stamp(library_versions()),
    }
    save_json(OUT, result)
    body = (f"| kill -9 trials | corrupt indexes | index afterwards old / new | debris left by killed runs "
            f"(removed by the next run) | left after the next run | next run equals a clean build |\n"
            f"|---|---|---|---|---|---|\n"
            f"| {args.trials} | {len(corrupt)} | {outcomes['old']} / {outcomes['new']} | {debris_seen} | "
            f"{len(left) - 1} besides the live generation | {'yes' if result['next_run_equals_clean_build'] else 'NO'} |\n\n"
            f"Each trial killed `longrag index` (real packaged MiniLM, {len(names)} licence texts, an update of "
            f"{len(names) - 12} files that takes {full_run:.0f} s uninterrupted) after a random 0–{full_run * 1.2:.0f} s."
            f"\n\n{result['stamp']}")
    replace_block("reliability", body, DOC)
    print(body)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
