"""Answers a reader can trust: `longrag ask` with the default config on questions written by hand from
the documents (benchmarks/questions/trust.jsonl), split dev/test.

Each question is asked of an index of its corpus (the example contracts; all CUAD contracts; all
QMSum meetings; all SQuALITY dev stories), built with the default config under runs/trust. Graded
automatically with lenient rules (`grade`), and every graded answer is kept in
benchmarks/results/trust.json so a person can read them:

- quote hit: a printed quote overlaps the hand-marked gold clause by at least half of the shorter;
- a shown answer is right when its polarity is the expected one (yes/no questions; a leading Yes or
  No), or when it holds the expected words and no negation the expected answer lacks (others);
- wrong shown: an answer printed as an answer (found, not withheld) that is not right; for a
  question the documents do not answer, any shown answer.

Thresholds (`ask.unsure`, `ask.support_threshold`) are tuned on the dev half (`--tune` re-grades
the saved dev answers over a grid, no model run); the table reports the test half.

    .venv/bin/python benchmarks/trust.py --split dev            # ask, grade, save
    .venv/bin/python benchmarks/trust.py --tune                  # thresholds from the saved dev answers
    .venv/bin/python benchmarks/trust.py --split test            # the reported numbers
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

QUESTIONS = ROOT / "benchmarks" / "questions" / "trust.jsonl"
OUT = ROOT / "benchmarks" / "results" / "trust.json"
INDEXES = ROOT / "runs" / "trust"

# ---- grading: the lenient grader is longrag/evaluation/answer_grading.py (tests/test_trust.py checks it) ----

from longrag.evaluation.answer_grading import grade, holds_words, overlaps, polarity, right  # noqa: E402,F401


from longrag.reasoning.pointing import MIN_SPAN_CHARS, asks_number, holds_number  # noqa: E402


def regrade(row: dict, unsure: float, support: float, answerable: float | None = None,
            aligned: float | None = None) -> dict:
    """The row as `ask` would have shown it at other thresholds (saved margins re-read; no model run).
    `answerable` can only be raised above the run's own (a question it kept from the generator has
    no answer to re-read)."""
    row = dict(row)
    check = row.get("check") or {}
    if answerable is not None and check.get("answerable") is not None and check["answerable"] < answerable:
        row.update(found=False, withheld=None, answer="not found in the indexed documents")
        return row
    if not row["found"] or check.get("margin") is None:  # not found, or withheld for an invented figure
        return row
    span = row.get("answer_span")
    if check["method"] == "yes/no likelihood":
        row["withheld"] = "unsure" if abs(check["margin"]) < unsure else None
    elif aligned is not None and check.get("aligned", 1.0) < aligned:
        row["withheld"] = "unaligned"
    elif span and sum(c.isalnum() for c in span["text"]) < MIN_SPAN_CHARS:  # rules of ask's own (pointing.py)
        row["withheld"] = "unaligned"
    elif span and asks_number(row["question"]) and not holds_number(span["text"]):
        row["withheld"] = "no number"
    else:
        row["withheld"] = "unsupported" if check["margin"] < support else None
    shown = span["text"] if span else row["reading"]
    row["answer"] = f"no answer shown: {row['withheld']}" if row["withheld"] else shown
    return row


def summary(questions: list[dict], rows: dict) -> dict:
    graded = [(q, grade(q, rows[q["id"]])) for q in questions if q["id"] in rows]
    answerable = [g for q, g in graded if q["kind"] != "unanswerable"]
    unanswerable = [g for q, g in graded if q["kind"] == "unanswerable"]
    shown = [g for g in answerable if g["shown"]]
    facts = [g for q, g in graded if q["kind"] == "fact"]
    facts_shown = [g for g in facts if g["shown"]]
    seconds = sorted(rows[q["id"]]["seconds"] for q, _ in graded)

    def share(items, key):
        return round(100 * sum(g[key] for g in items) / len(items), 1) if items else None

    return {"questions": len(graded), "answerable": len(answerable), "unanswerable": len(unanswerable),
            "quote_hit": share(answerable, "quote_hit"), "evidence_hit": share(answerable, "evidence_hit"),
            "wrong_shown": share([g for _, g in graded], "wrong_shown"),
            "right_of_shown": share(shown, "right"), "shown": len(shown),
            "answerable_shown": share(answerable, "shown"), "facts": len(facts),
            "facts_shown": share(facts, "shown"), "facts_right_of_shown": share(facts_shown, "right"),
            "withheld": share(answerable, "withheld"), "answerable_not_found": share(answerable, "not_found"),
            "unanswerable_not_found": share(unanswerable, "not_found"),
            "unanswerable_not_shown": share(unanswerable, "right"),
            "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
            "p90_seconds": round(seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))], 1) if seconds else None}


# ---- run ----------------------------------------------------------------------------------------

def load_questions(split: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [q for q in rows if split in (None, "all", q["split"])]


def corpus_texts(name: str) -> dict[str, str]:
    """doc_id → text as the index holds it."""
    if name == "contracts":
        return {p.name: p.read_text() for p in sorted((ROOT / "examples" / "contracts").glob("*.txt"))}
    from longrag.evaluation.datasets import cuad, qmsum, squality

    return {"cuad": cuad, "qmsum": qmsum, "squality": lambda: squality(split="dev")}[name]().corpus


def open_index(name: str, encoder, settings: dict):
    from longrag import Pipeline
    from longrag.index.layout import is_index
    from longrag.types import Document

    target = INDEXES / name
    if not is_index(target):
        pipe = Pipeline.from_config(None, encoder=encoder)
        if name == "contracts":
            pipe.index([ROOT / "examples" / "contracts"], index_dir=target, progress=False)
        else:
            import hashlib

            pipe.index_documents([Document(d, d, t, hashlib.sha256(t.encode()).hexdigest())
                                  for d, t in sorted(corpus_texts(name).items())], target, progress=False)
    return Pipeline.load(target, config=settings, encoder=encoder)


def gold_span(question: dict, texts: dict[str, str]) -> list[int] | None:
    if not question.get("gold"):
        return None
    text = texts[question["doc"]]
    start = text.find(question["gold"])
    if start < 0:  # written with other whitespace: match it squashed
        pattern = r"\s+".join(map(re.escape, question["gold"].split()))
        m = re.search(pattern, text)
        if not m:
            raise SystemExit(f"{question['id']}: gold text not found in {question['doc']}")
        return [m.start(), m.end()]
    return [start, start + len(question["gold"])]


def save(results: dict, out: Path) -> None:
    """Write this process's runs into `out`, keeping the runs another process wrote there meanwhile."""
    from readme_tables import save_json

    on_disk = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    for key, mine in results["runs"].items():
        run = on_disk.setdefault("runs", {}).setdefault(key, {"rows": {}})
        run.update({**mine, "rows": {**run.get("rows", {}), **mine["rows"]}})
    save_json(out, on_disk)


def run(args) -> dict:
    from longrag.config import load_config
    from longrag.evaluation.runner import PeakMemory
    from longrag.indexing import library_versions
    from readme_tables import stamp
    from longrag.pipeline import _load_generator
    results = json.loads(args.out.read_text()) if args.out.exists() and not args.fresh else {"runs": {}}
    config = load_config(args.config)
    settings = config.to_dict()
    generator = _load_generator(config)
    key = args.label or f"{config.ask.selector}@{config.ask.budget}"
    run_rows = results["runs"].setdefault(key, {"rows": {}})
    rows = run_rows["rows"]
    questions = [q for q in load_questions(args.split) if not args.kinds or q["kind"] in args.kinds.split(",")][: args.limit]
    pipes, texts = {}, {}
    encoder = checker = None
    with PeakMemory(interval=0.1) as memory:
        for q in questions:
            if q["id"] in rows and not args.redo:
                continue
            corpus = q["corpus"]
            if corpus not in pipes:
                pipes[corpus] = open_index(corpus, encoder, settings)
                encoder = pipes[corpus].encoder
                pipes[corpus]._generator = generator
                checker = checker or pipes[corpus].checker  # loaded before any question is timed
                pipes[corpus]._checker = checker
                texts[corpus] = corpus_texts(corpus)
            answer = pipes[corpus].ask(q["question"])
            rows[q["id"]] = {
                "question": q["question"], "split": q["split"], "answer": answer.answer, "reading": answer.reading,
                "found": answer.found, "withheld": answer.withheld, "check": answer.check,
                "quotes": [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text} for c in answer.quotes],
                "answer_span": answer.answer_span and {"doc_id": answer.answer_span.doc_id, "start": answer.answer_span.start,
                                                       "end": answer.answer_span.end, "text": answer.answer_span.text},
                "evidence": [[e.doc_id, e.start, e.end] for e in answer.evidence], "tokens_in": answer.tokens_in, "seconds": answer.seconds, "relevance": answer.relevance,
                "gold_span": gold_span(q, texts[corpus])}
            g = grade(q, rows[q["id"]])
            rows[q["id"]]["grade"] = g
            print(f"{q['id']} {q['split']} {'RIGHT' if g['right'] else 'wrong'}{' SHOWN-WRONG' if g['wrong_shown'] else ''} "
                  f"quote={'y' if g.get('quote_hit') else 'n'} {answer.seconds:.1f}s {q['question'][:70]}\n"
                  f"   -> {answer.answer[:150]!r} (reading {answer.reading[:80]!r}, check {answer.check})", flush=True)
            save(results, args.out)
    run_rows.update({"config": {"selector": config.ask.selector, "budget": config.ask.budget,
                                "unsure": config.ask.unsure, "support_threshold": config.ask.support_threshold,
                                "answerable": config.ask.answerable, "read": config.ask.read,
                                "aligned": config.ask.aligned,
                                "checker": config.ask.checker,
                                "generator": f"{config.generator.model} ({generator.backend})"},
                     "peak_rss_mb": max(run_rows.get("peak_rss_mb", 0), memory.peak_mb),
                     "versions": library_versions(), "stamp": stamp(library_versions())})
    save(results, args.out)
    return results


def report(results: dict, split: str) -> str:
    questions = load_questions(split)
    lines = ["| run | questions | quote holds the gold clause | evidence holds it | answerable shown | wrong shown "
             "| right of shown (n) | facts shown (right of them) | withheld | answerable → not found "
             "| unanswerable → not found (not shown) | median s (p90) | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, run_rows in results["runs"].items():
        s = summary(questions, run_rows["rows"])
        if not s["questions"]:
            continue
        lines.append(f"| {key} | {s['questions']} | {s['quote_hit']}% | {s['evidence_hit']}% | {s['answerable_shown']}% | "
                     f"{s['wrong_shown']}% | {s['right_of_shown']}% ({s['shown']}) | {s['facts_shown']}% "
                     f"({s['facts_right_of_shown']}%) | {s['withheld']}% | {s['answerable_not_found']}% | "
                     f"{s['unanswerable_not_found']}% "
                     f"({s['unanswerable_not_shown']}%) | {s['median_seconds']} ({s['p90_seconds']}) | "
                     f"{round(run_rows['peak_rss_mb']) if 'peak_rss_mb' in run_rows else ''} |")
    return "\n".join(lines)


def tune(results: dict, key: str) -> None:
    """Re-grade the saved dev answers of run `key` over a grid of thresholds."""
    questions = load_questions("dev")
    base = results["runs"][key]["rows"]
    print("unsure support answerable aligned | wrong_shown right_of_shown (shown) withheld answerable_not_found "
          "unanswerable_not_found")
    for unsure in (0.0, 0.5, 1.0, 1.5, 2.0):
        for support in (-3.0, -1.0, 0.0, 1.0, 2.0, 3.0):
            for answerable in (None, 0.0, 0.25, 0.5, 0.75, 1.0):
                for aligned in (0.5, 0.6, 0.75, 0.9, 1.0):
                    rows = {q["id"]: regrade(base[q["id"]], unsure, support, answerable, aligned)
                            for q in questions if q["id"] in base}
                    s = summary(questions, rows)
                    print(f"{unsure:4.1f} {support:4.1f} {answerable!s:5} {aligned:4.2f} | {s['wrong_shown']!s:5} "
                          f"{s['right_of_shown']!s:5} ({s['shown']}) {s['withheld']!s:5} {s['answerable_not_found']!s:5} "
                          f"{s['unanswerable_not_found']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    parser.add_argument("--config", help="YAML settings (default: the default config)")
    parser.add_argument("--label", help="run name in the results (default: selector@budget)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--kinds", help="only these question kinds, comma-separated (fact, yesno, unanswerable)")
    parser.add_argument("--out", type=Path, default=OUT, help="results file (default: benchmarks/results/trust.json)")
    parser.add_argument("--redo", action="store_true", help="ask again questions already answered")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--tune", metavar="RUN", nargs="?", const="", help="grid over thresholds on saved dev answers")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--at-defaults", metavar="RUN", help="also report RUN's saved answers re-graded at the default "
                        "config's thresholds (what `ask` shows today, no model run)")
    args = parser.parse_args()
    if args.tune is not None:
        results = json.loads(OUT.read_text())
        tune(results, args.tune or next(iter(results["runs"])))
        return
    results = json.loads(args.out.read_text()) if args.table_only else run(args)
    if args.at_defaults:
        from longrag.config import load_config

        ask = load_config(None).ask
        base = results["runs"][args.at_defaults]
        results["runs"][f"{args.at_defaults} at the default thresholds"] = {**base, "rows": {
            qid: regrade(row, ask.unsure, ask.support_threshold, ask.answerable, ask.aligned)
            for qid, row in base["rows"].items()}}
    table = report(results, args.split)
    print(table)
    if args.split == "test":  # the reported numbers; dev is for tuning
        from readme_tables import RESULTS, replace_block

        tested = {q["id"] for q in load_questions("test")}
        stamps = sorted({r["stamp"] for r in results["runs"].values() if "stamp" in r and tested & set(r["rows"])})
        replace_block("trust", table + "\n\n" + "\n".join(stamps), RESULTS)


if __name__ == "__main__":
    main()
