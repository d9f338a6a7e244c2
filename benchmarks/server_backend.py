"""The same model in process and behind an OpenAI-compatible server: the ten contract questions'
answers from the same evidence through the llama.cpp backend and through `generator.backend: openai`
against llama-cpp-python's server on the same GGUF file (the Q8_0 copy the llama.cpp backend runs).

Evidence: the default selector (hybrid) at the default budget over an index of examples/contracts,
chosen once per question and given to both. Reported: how many answers are identical, and the
seconds a question each way (the HTTP overhead). Then the first 20 CUAD questions of the answer-quality
benchmark through the server, against the in-process answers it saved (same prompt): how many are
identical, and token F1 each way. Writes benchmarks/results/server_backend.json.

    .venv/bin/python benchmarks/server_backend.py
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from longrag import Pipeline  # noqa: E402
from longrag.evaluation.contract_questions import QUESTIONS  # noqa: E402
from longrag.generation.llama_cpp import requantised  # noqa: E402
from longrag.generation.weights import gguf_file, llama_cpp_type  # noqa: E402
from longrag.generation.openai_server import OpenAIGenerator  # noqa: E402
from longrag.indexing import library_versions  # noqa: E402
from longrag.reasoning import candidates_of, generate_answer, make_selector  # noqa: E402
from longrag import retrieval  # noqa: E402
from readme_tables import save_json, stamp  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "server_backend.json"
WINDOW = 4096


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cores = str(len(os.sched_getaffinity(0)))
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", str(WINDOW), "--n_threads", cores,
                                "--n_threads_batch", cores], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=5):
                return process, base_url
        except OSError:
            time.sleep(0.5)


def answer_quality_through(remote, pipe, limit: int) -> dict:
    """The first `limit` CUAD questions of the answer-quality benchmark answered through the server
    from the same evidence; compared with the saved in-process answers (same prompt) by token F1."""
    from answer_quality import INDEXES as AQ_INDEXES, OUT as AQ_OUT, build_index, questions
    from longrag.evaluation.answer_metrics import clean_answer, token_f1

    saved = json.loads(AQ_OUT.read_text())
    budget = saved["settings"]["budget"]
    dataset, rows = questions("cuad", 1000)
    store = build_index(pipe, dataset, {d for _, _, d, _ in rows}, AQ_INDEXES / "index-cuad")
    out = []
    for qid, question, doc_id, reference in rows[:limit]:
        record = saved["records"][f"cuad/{qid}"]["hybrid"]
        chosen = make_selector("hybrid", count_tokens=pipe.generator.count_tokens, encoder=pipe.encoder
                               ).select(question, candidates_of(store, doc_id), budget)
        text, _, _, _ = generate_answer(remote, question, chosen.evidence, saved["settings"]["max_new_tokens"])
        out.append({"qid": qid, "same": text == record["answer"], "server_f1": token_f1(clean_answer(text), reference),
                    "in_process_f1": record["score"]})
        print(f"cuad {qid} {'same' if out[-1]['same'] else 'DIFF'} F1 {out[-1]['in_process_f1']:.2f} / "
              f"{out[-1]['server_f1']:.2f}", flush=True)
    return {"questions": len(out), "same": sum(r["same"] for r in out),
            "in_process_f1": statistics.mean(r["in_process_f1"] for r in out),
            "server_f1": statistics.mean(r["server_f1"] for r in out), "rows": out}


def main() -> None:
    index = Path(tempfile.mkdtemp(prefix="longrag-server-")) / "contracts"
    pipe = Pipeline.from_config(None)
    pipe.index([ROOT / "examples" / "contracts"], index_dir=index, progress=False)
    pipe = Pipeline.load(index)
    local = pipe.generator
    settings = pipe.config.ask
    evidence = {}
    for question in QUESTIONS:
        vector = pipe.encoder.encode_queries([question])[0]
        hits = retrieval.search(pipe.store, question, vector, pipe.config, settings.documents)
        candidates = [c for h in hits for c in candidates_of(pipe.store, h.doc_id)]
        evidence[question] = make_selector("hybrid", count_tokens=local.count_tokens, encoder=pipe.encoder
                                           ).select(question, candidates, settings.budget).evidence
    process, base_url = start_server(requantised(gguf_file("qwen2.5-0.5b"), llama_cpp_type("qwen2.5-0.5b")))
    try:
        remote = OpenAIGenerator(base_url, "qwen2.5-0.5b", context_window=WINDOW)
        rows = []
        for question, blocks in evidence.items():
            row = {"question": question}
            for name, generator in (("in_process", local), ("server", remote)):
                started = time.perf_counter()
                text, tokens_in, _, _ = generate_answer(generator, question, blocks, pipe.config.generator.max_new_tokens)
                row[name] = {"answer": text, "seconds": round(time.perf_counter() - started, 2), "tokens_in": tokens_in}
            row["same"] = row["in_process"]["answer"] == row["server"]["answer"]
            rows.append(row)
            print(f"{'same' if row['same'] else 'DIFF'} {row['in_process']['seconds']:5.1f}s / "
                  f"{row['server']['seconds']:5.1f}s {question[:70]}", flush=True)
        quality = answer_quality_through(remote, pipe, int(os.environ.get("CUAD_LIMIT", "20")))
    finally:
        process.terminate()
        process.wait(timeout=30)
    result = {"rows": rows, "same": sum(r["same"] for r in rows), "questions": len(rows), "answer_quality": quality,
              "median_seconds": {k: statistics.median(r[k]["seconds"] for r in rows) for k in ("in_process", "server")},
              "versions": library_versions(), "stamp": stamp(library_versions())}
    save_json(OUT, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rows", "answer_quality")}, indent=1))
    print({k: v for k, v in quality.items() if k != "rows"})


if __name__ == "__main__":
    main()
