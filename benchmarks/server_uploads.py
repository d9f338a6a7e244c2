"""Search latency over `longrag serve`'s HTTP API while an upload is being indexed, beside the quiet figure.

One index of examples/contracts (default configuration), served by a real uvicorn on the loopback
(`longrag.server.running`, with a sign-in token) and called with httpx on one keep-alive connection.
Quiet: the ten contract questions as queries, k = 10, `--rounds` times, one after the other. Then
one file is uploaded (all 22 contracts in one text file, ~220 k characters: long enough that its
reading and encoding outlast many searches) and the same queries are searched one after the other
until the server reports the upload indexed; searches are counted only while the job was reading or
encoding (the writer lock held). Errors, latency (median, p90, max) each way, and how long the
upload took to index. Writes benchmarks/results/server_uploads.json and the `server_uploads` block
of docs/results.md.

    .venv/bin/python benchmarks/server_uploads.py
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402

from longrag import Pipeline  # noqa: E402
from longrag.evaluation.contract_questions import QUESTIONS  # noqa: E402
from longrag.indexing import library_versions  # noqa: E402
from longrag.server import running  # noqa: E402
from readme_tables import RESULTS, machine, replace_block, save_json, stamp  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "server_uploads.json"
QUERIES = list(QUESTIONS)
TOKEN = "benchmark-token-0123456789abcdef"
BUSY = ("queued", "reading", "encoding")


def ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "median_ms": round(1000 * statistics.median(ordered), 1),
            "p90_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
            "max_ms": round(1000 * ordered[-1], 1)}


def one_search(client: httpx.Client, query: str) -> tuple[float, bool]:
    began = time.perf_counter()
    try:
        ok = client.get("/api/search", params={"q": query, "k": 10}).status_code == 200
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - began, ok


def run(args) -> dict:
    load_before = os.getloadavg()  # the machine is shared: how busy it was is part of the numbers
    big = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples" / "contracts").glob("*.txt")))
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "contracts"
        Pipeline.from_config(None).index([ROOT / "examples" / "contracts"], index_dir=index, progress=False)
        pipe = Pipeline.load(index)
        with running(pipe, token=TOKEN) as url, \
                httpx.Client(base_url=url, timeout=900, headers={"authorization": f"token {TOKEN}"}) as client:
            for q in QUERIES:  # warm: the encoder's first calls
                one_search(client, q)
            quiet = [one_search(client, q) for _ in range(args.rounds) for q in QUERIES]
            print(f"quiet: {ms([s for s, _ in quiet])}", flush=True)

            started = time.perf_counter()
            response = client.post("/api/documents", files={"files": ("all-contracts.txt", big.encode(), "text/plain")})
            response.raise_for_status()
            job = response.json()["accepted"][0]["job"]
            during, state, i = [], "queued", 0
            while state in BUSY:
                seconds, ok = one_search(client, QUERIES[i % len(QUERIES)])
                state = next(j["state"] for j in client.get("/api/jobs").json()["jobs"] if j["id"] == job)
                if state in BUSY:  # this search ran while the upload was being read or encoded
                    during.append((seconds, ok))
                i += 1
            indexed_s = time.perf_counter() - started
            print(f"during the upload's indexing: {ms([s for s, _ in during])}; job {state} after {indexed_s:.1f} s",
                  flush=True)

    versions = {**library_versions(), **{name: version(name) for name in ("fastapi", "uvicorn", "httpx")}}
    return {"machine": machine(), "cpu_cores": os.cpu_count(), "versions": versions, "stamp": stamp(versions),
            "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
            "quiet": {**ms([s for s, _ in quiet]), "errors": sum(not ok for _, ok in quiet)},
            "during_upload": {**ms([s for s, _ in during]), "errors": sum(not ok for _, ok in during)},
            "upload": {"characters": len(big), "state": state, "seconds_to_indexed": round(indexed_s, 1)},
            "settings": {"k": 10, "rounds": args.rounds, "index": "examples/contracts, default configuration"}}


def report(results: dict) -> str:
    q, d, u = results["quiet"], results["during_upload"], results["upload"]
    lines = ["| search over HTTP, k = 10 | searches | errors | median | p90 | max |", "|---|---|---|---|---|---|",
             f"| quiet | {q['n']} | {q['errors']} | {q['median_ms']} ms | {q['p90_ms']} ms | {q['max_ms']} ms |",
             f"| while an upload is read and encoded | {d['n']} | {d['errors']} | {d.get('median_ms')} ms | "
             f"{d.get('p90_ms')} ms | {d.get('max_ms')} ms |",
             "", f"The upload ({u['characters']:,} characters of text) was {u['state']} {u['seconds_to_indexed']} s "
             "after it was sent.",
             "", results["stamp"] + f" Load average (1 min) {results['load_average']['before'][0]} before, "
             f"{results['load_average']['after'][0]} after."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each of the ten queries is searched while quiet")
    parser.add_argument("--report-only", action="store_true", help="rewrite the docs block from the saved JSON")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads(OUT.read_text())
    else:
        results = run(args)
        save_json(OUT, results)
    table = report(results)
    print(table)
    replace_block("server_uploads", table, RESULTS)


if __name__ == "__main__":
    main()
