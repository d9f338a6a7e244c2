"""`longrag serve`'s overhead: search and ask through the HTTP API against the same Pipeline called
in Python, and 20 concurrent searches while an answer is being generated.

One index of examples/contracts (default configuration: hybrid index, qwen2.5-0.5b reading, qwen2.5-1.5b
checking), one Pipeline, served by a real uvicorn on the loopback (`longrag.server.running`) and
called with httpx (one keep-alive connection, as an app would). Models are loaded and one search and one
answer run before anything is timed. Search: the ten contract questions as queries, k = 10, alternating
Python and HTTP, `--rounds` times each. Ask: the first `--asks` contract questions, each asked once
untimed (llama.cpp's prompt cache then holds it for both ways), then through Python and HTTP (the whole
streamed answer), each way first in turn. Concurrency: 20 searches from 20 threads at once, first with
nothing else running, then again once an ask of a question not asked before has started reading (its
`hits` event); errors, latency, and how many were answered before the ask's answer arrived. Writes benchmarks/results/server_latency.json and the
`server_latency` block of docs/results.md.

    .venv/bin/python benchmarks/server_latency.py
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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

OUT = ROOT / "benchmarks" / "results" / "server_latency.json"
QUERIES = list(QUESTIONS)


def ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"n": len(ordered), "median_ms": round(1000 * statistics.median(ordered), 1),
            "p90_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
            "max_ms": round(1000 * ordered[-1], 1)}


def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def http_ask(client: httpx.Client, question: str, on_event=None) -> dict:
    """The streamed answer's events, in order; `on_event(event)` as each arrives."""
    events = []
    with client.stream("POST", "/api/ask", json={"question": question}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                if on_event:
                    on_event(events[-1])
    if events[-1]["type"] != "done":
        raise RuntimeError(f"the ask ended in {events[-1]}")
    return events[-1]["answer"]


def burst(client: httpx.Client, n: int = 20) -> list[tuple[float, bool, float]]:
    """n searches from n threads at once: (seconds, ok, monotonic time done) each."""
    start = threading.Barrier(n)

    def one(i: int):
        start.wait()
        began = time.perf_counter()
        try:
            ok = client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10}).status_code == 200
        except httpx.HTTPError:
            ok = False
        return time.perf_counter() - began, ok, time.monotonic()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def run(args) -> dict:
    load_before = os.getloadavg()  # the machine is shared: how busy it was is part of the numbers
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "contracts"
        Pipeline.from_config(None).index([ROOT / "examples" / "contracts"], index_dir=index, progress=False)
        pipe = Pipeline.load(index)
        pipe.generator, pipe.checker  # noqa: B018 (loaded before anything is timed)
        with running(pipe) as url, httpx.Client(base_url=url, timeout=900, limits=httpx.Limits(max_connections=32)) as client:
            pipe.search(QUERIES[0], k=10), client.get("/api/search", params={"q": QUERIES[0], "k": 10})
            http_ask(client, QUERIES[0])  # warm: the first answer pays for the models' first calls

            python_s, http_s = [], []
            for _ in range(args.rounds):
                for q in QUERIES:
                    python_s.append(timed(lambda: pipe.search(q, k=10))[0])
                    http_s.append(timed(lambda: client.get("/api/search", params={"q": q, "k": 10}).raise_for_status())[0])
            print(f"search: python {ms(python_s)}  http {ms(http_s)}", flush=True)

            asks = []
            for i, q in enumerate(QUERIES[: args.asks]):
                # llama.cpp keeps the last prompt's cache: a question's first run is slower than its
                # second whichever way it comes. One untimed run first, then both ways, in turn first.
                pipe.ask(q)
                if i % 2:
                    http_seconds, served = timed(lambda: http_ask(client, q))
                    py_seconds, answer = timed(lambda: pipe.ask(q))
                else:
                    py_seconds, answer = timed(lambda: pipe.ask(q))
                    http_seconds, served = timed(lambda: http_ask(client, q))
                asks.append({"question": q, "python_s": round(py_seconds, 2), "http_s": round(http_seconds, 2),
                             "same_answer": answer.answer == served["answer"]})
                print(f"ask: {asks[-1]}", flush=True)

            quiet = burst(client)
            events, ask_times = [], {}
            asking = threading.Thread(target=http_ask, args=(client, QUERIES[-1]),  # not asked yet: no cache
                                      kwargs={"on_event": lambda e: (events.append(e), ask_times.setdefault(e["type"], time.monotonic()))})
            asking.start()
            while "hits" not in ask_times and asking.is_alive():
                time.sleep(0.005)
            busy = burst(client)
            asking.join()
            answered_at = ask_times.get("quotes", float("inf"))
            concurrent = {
                "alone": {**ms([s for s, _, _ in quiet]), "errors": sum(not ok for _, ok, _ in quiet)},
                "during_ask": {**ms([s for s, _, _ in busy]), "errors": sum(not ok for _, ok, _ in busy),
                               "done_before_the_answer": sum(done < answered_at for _, _, done in busy)},
                "ask_completed": [e["type"] for e in events][-1] == "done"}
            print(f"20 concurrent searches: {concurrent}", flush=True)

    versions = {**library_versions(), **{name: version(name) for name in ("fastapi", "uvicorn", "httpx")}}
    results = {"machine": machine(), "cpu_cores": os.cpu_count(), "versions": versions, "stamp": stamp(versions),
               "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
               "search": {"python": ms(python_s), "http": ms(http_s),
                          "overhead_median_ms": round(1000 * (statistics.median(http_s) - statistics.median(python_s)), 1)},
               "ask": asks, "concurrent": concurrent,
               "settings": {"k": 10, "rounds": args.rounds, "index": "examples/contracts, default configuration"}}
    save_json(OUT, results)
    return results


def report(results: dict) -> str:
    s, c = results["search"], results["concurrent"]
    py_ask = statistics.median(a["python_s"] for a in results["ask"])
    http_ask_s = statistics.median(a["http_s"] for a in results["ask"])
    same = sum(a["same_answer"] for a in results["ask"])
    lines = ["| | Python API | HTTP API | server overhead |", "|---|---|---|---|",
             f"| search, k = 10 (median of {s['python']['n']}; p90) | {s['python']['median_ms']} ms "
             f"({s['python']['p90_ms']}) | {s['http']['median_ms']} ms ({s['http']['p90_ms']}) | {s['overhead_median_ms']:+} ms |",
             f"| ask, whole answer (median of {len(results['ask'])} contract questions) | {py_ask:.1f} s | "
             f"{http_ask_s:.1f} s | {http_ask_s - py_ask:+.1f} s; same answer {same} of {len(results['ask'])} |",
             "", "| 20 concurrent searches (HTTP) | errors | median | p90 | max | answered before the ask's answer |",
             "|---|---|---|---|---|---|",
             f"| no ask running | {c['alone']['errors']} | {c['alone']['median_ms']} ms | {c['alone']['p90_ms']} ms | "
             f"{c['alone']['max_ms']} ms | |",
             f"| while an ask is being read | {c['during_ask']['errors']} | {c['during_ask']['median_ms']} ms | "
             f"{c['during_ask']['p90_ms']} ms | {c['during_ask']['max_ms']} ms | "
             f"{c['during_ask']['done_before_the_answer']} of 20 |",
             "", results["stamp"] + f" Load average (1 min) {results['load_average']['before'][0]} before, "
             f"{results['load_average']['after'][0]} after."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each of the ten queries is searched each way")
    parser.add_argument("--asks", type=int, default=4, help="contract questions asked each way")
    parser.add_argument("--report-only", action="store_true", help="rewrite the docs block from the saved JSON")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if args.report_only else run(args)
    table = report(results)
    print(table)
    replace_block("server_latency", table, RESULTS)


if __name__ == "__main__":
    main()
