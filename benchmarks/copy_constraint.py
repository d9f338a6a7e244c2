"""Copy-constrained decoding against free reading + alignment, on the trust benchmark's dev fact questions.

For each dev fact question (benchmarks/questions/trust.jsonl) the quotes a saved `ask` run printed
(benchmarks/results/trust.json, `--run`; questions it has not reached yet are read from the `--fallback`
runs, whose quotes come from the same question-only choice) are widened by their neighbouring sentences
(pointing.reading_blocks), and the packaged generator reads them four ways:

- free: `pointing.point`, shown when its new words align (share >= ask.aligned) to a sentence;
- naive constrained: the reply forced to be a span of the blocks, the best first token then greedy;
- beam constrained: the best `--starts` first tokens each continued greedily, best mean log-probability;
- retry: the free reading, and the beam-constrained one only when the free one does not align.

A shown answer is graded with the trust benchmark's lenient `right`. The retry row is composed from
the free and beam rows of the same question (greedy decoding is deterministic; its seconds are the free
reading's plus, when it retries, the beam's).

    .venv/bin/python benchmarks/copy_constraint.py              # resumable; --redo to read again
    .venv/bin/python benchmarks/copy_constraint.py --report     # the table from the saved rows
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trust import OUT as TRUST, corpus_texts, load_questions, right  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "copy_constraint.json"
VARIANTS = ("free", "naive", "beam", "retry")


def quotes_of(question: dict, runs: dict, order: list[str]):
    """(run, quotes as Citations) from the first run in `order` that printed quotes for the question."""
    from longrag.types import Citation

    for name in order:
        row = runs.get(name, {}).get("rows", {}).get(question["id"])
        if row and row.get("quotes"):
            return name, [Citation(q["doc_id"], q["doc_id"], q["start"], q["end"], q["text"]) for q in row["quotes"]]
    return None, []


def shown(pointed, aligned: float) -> str | None:
    """What `ask` would show: the span, when the reading's new words align well enough."""
    return pointed.span.text if pointed.span is not None and pointed.aligned >= aligned else None


def _cold(generator) -> None:
    """Forget llama.cpp's cached prompt, so the next reading pays for reading its prompt."""
    if hasattr(generator, "llm"):
        generator.llm.reset()


def read(generator, question: dict, blocks, aligned: float, starts: int) -> dict:
    """The four readings of one question. The constrained ones run after the free one, on the prompt
    llama.cpp already holds (as a retry does); read alone, each would first read the prompt
    (`prompt_seconds`, measured once more from a cold cache)."""
    from longrag.reasoning.constrained import Copy, _decoder, as_pointed, copies
    from longrag.reasoning.pointing import point, point_messages

    def row(pointed, seconds):
        text = shown(pointed, aligned)
        return {"reading": pointed.reading, "aligned": round(pointed.aligned, 3), "shown": text,
                "span": pointed.span and [pointed.span.doc_id, pointed.span.start, pointed.span.end],
                "right": bool(text) and right(question, text), "seconds": round(seconds, 2)}

    _cold(generator)
    began = time.perf_counter()
    free = point(generator, question["question"], blocks)
    out = {"free": row(free, time.perf_counter() - began)}
    began, found, naive_seconds = time.perf_counter(), [], 0.0
    for copied in copies(generator, question["question"], blocks, starts):
        found.append(copied)
        naive_seconds = naive_seconds or time.perf_counter() - began
    beam_seconds = time.perf_counter() - began
    found = found or [Copy("", None, float("-inf"), 0)]
    out["naive"] = row(as_pointed(found[0], question["question"]), naive_seconds)
    out["beam"] = row(as_pointed(max(found, key=lambda c: c.logprob), question["question"]), beam_seconds)
    out["beam"]["candidates"] = [[c.text, round(c.logprob, 3)] for c in found]
    out["free"]["reading_right"] = right(question, free.reading)  # right words, shown or not
    retried = out["free"]["shown"] is None
    out["retry"] = {**(out["beam"] if retried else out["free"]), "retried": retried,
                    "seconds": round(out["free"]["seconds"] + (beam_seconds if retried else 0.0), 2)}
    decoder = _decoder(generator)
    _cold(generator)
    began = time.perf_counter()
    decoder.first_logits(decoder.ids(generator.render(point_messages(generator, question["question"], blocks))))
    out["prompt_seconds"] = round(time.perf_counter() - began, 2)
    return out


def summary(rows: dict) -> dict:
    table = {}
    for name in VARIANTS:
        cells = [r[name] for r in rows.values()]
        answered = [c for c in cells if c["shown"]]
        # read alone, a constrained reading first reads its prompt; the retry's is already cached
        seconds = sorted(r[name]["seconds"] + (r["prompt_seconds"] if name in ("naive", "beam") else 0.0)
                         for r in rows.values())
        table[name] = {"questions": len(cells), "answered": len(answered), "right": sum(c["right"] for c in answered),
                       "wrong": sum(not c["right"] for c in answered),
                       "median_seconds": round(statistics.median(seconds), 2) if seconds else None,
                       "total_seconds": round(sum(seconds), 1)}
    return table


def report(results: dict) -> str:
    from readme_tables import markdown_table

    names = {"free": "free reading + alignment (`point`)", "naive": "naive constraint (best first token, greedy)",
             "beam": f"beam over {results['starts']} start tokens", "retry": "free, then beam constraint as a retry"}
    rows = [[names[k], v["answered"], v["right"], v["wrong"], v["median_seconds"], v["total_seconds"]]
            for k, v in results["summary"].items()]
    n = next(iter(results["summary"].values()))["questions"]
    sources = ", ".join(f"{k}: {v}" for k, v in sorted(results["quote_runs"].items()))
    return (f"Dev fact questions of the trust benchmark with quotes ({n}; quotes from trust.json runs: {sources}), "
            f"read by {results['generator']} over the quotes and their neighbouring sentences. Answered: a span "
            f"is shown (free: new words aligned >= {results['aligned']}; constrained: the copy adds words to the "
            "question); right/wrong: trust.py's lenient grader on the shown span. Seconds a question (reading only, "
            "no retrieval or checker), measured while the machine was shared by other jobs, the four ways side by "
            "side in one process; a constrained reading alone includes reading its prompt, the retry reuses the "
            "free reading's cached prompt.\n\n"
            + markdown_table(["reading", "answered", "right", "wrong", "median s", "total s"], rows)
            + f"\n\n{results['stamp']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="pointing", help="trust.json run whose quotes are read (default: pointing)")
    parser.add_argument("--fallback", nargs="*", default=["probe-dev", "sentences@1024"],
                        help="runs whose quotes are read for questions --run has not reached")
    parser.add_argument("--starts", type=int, default=4, help="start tokens of the beam (default 4)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: the config's)")
    parser.add_argument("--limit", type=int, help="read only the first N questions")
    parser.add_argument("--redo", action="store_true", help="read again the questions already in --out")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/results.md")
    parser.add_argument("--report", action="store_true", help="only summarise the rows saved in --out (no model)")
    args = parser.parse_args()

    from tqdm import tqdm

    from longrag.config import load_config, with_overrides
    from longrag.generation import chosen_backend
    from longrag.indexing import library_versions
    from longrag.pipeline import _load_generator
    from longrag.reasoning.pointing import reading_blocks
    from readme_tables import RESULTS, replace_block, save_json, stamp

    config = load_config(None)
    if args.threads:
        config = with_overrides(config, generator={"threads": args.threads})
    aligned = config.ask.aligned
    runs = json.loads(TRUST.read_text())["runs"]
    results = json.loads(args.out.read_text()) if args.out.exists() else {"rows": {}}
    rows = results["rows"]
    questions = [] if args.report else [q for q in load_questions("dev") if q["kind"] == "fact"][: args.limit]
    generator = _load_generator(config) if questions else None
    results["generator"] = f"{config.generator.model} ({chosen_backend(config.generator)})"
    texts: dict[str, dict[str, str]] = {}
    for q in tqdm(questions, desc="questions", unit="q"):
        if q["id"] in rows and not args.redo:
            continue
        source, quotes = quotes_of(q, runs, [args.run, *args.fallback])
        if not quotes:
            continue
        if q["corpus"] not in texts:
            texts[q["corpus"]] = corpus_texts(q["corpus"])
        blocks = reading_blocks(quotes, texts[q["corpus"]], generator.count_tokens)
        rows[q["id"]] = {"question": q["question"], "corpus": q["corpus"], "quotes_from": source,
                         **read(generator, q, blocks, aligned, args.starts)}
        line = " ".join(f"{k}={'R' if rows[q['id']][k]['right'] else ('w' if rows[q['id']][k]['shown'] else '-')}"
                        for k in VARIANTS)
        tqdm.write(f"{q['id']} {line} | free {rows[q['id']]['free']['reading'][:60]!r} | "
                   f"beam {rows[q['id']]['beam']['reading'][:60]!r}")
        save_json(args.out, results)
    results.update(summary=summary(rows), starts=args.starts, aligned=aligned,
                   quote_runs={k: sum(r["quotes_from"] == k for r in rows.values())
                               for k in {r["quotes_from"] for r in rows.values()}},
                   versions=library_versions(), stamp=stamp(library_versions()))
    save_json(args.out, results)
    print(report(results))
    if not args.no_docs:
        replace_block("copy-constraint", report(results), RESULTS)


if __name__ == "__main__":
    main()
