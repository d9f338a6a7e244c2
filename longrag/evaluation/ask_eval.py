"""`longrag eval --dataset DIR`: `ask` on every judged question of a folder with passage spans
(what `longrag compare --synthesize` writes), graded by the lenient grader (answer_grading.py):
how often the quotes and the evidence hold the question's passage, and how many answers are shown.

Each answer is saved to answers.jsonl in the output folder as it comes, so an interrupted run
continues; a person can read every graded answer there.
"""
from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..config import Config
from ..errors import InputError
from ..types import Document
from .answer_grading import grade
from .beir import PASSAGES, load_beir

ANSWERS = "answers.jsonl"


@dataclass(frozen=True)
class AnswerSummary:
    questions: int
    quote_hit: float  # % of questions with a quote overlapping the passage (half of the shorter span)
    evidence_hit: float  # % with an evidence block overlapping it
    shown: int  # answers printed as answers
    withheld: int  # answered, but not shown (the quotes did not support the reading)
    not_found: int
    median_seconds: float

    def lines(self) -> list[str]:
        n = self.questions
        return [f"{n} questions",
                f"  quotes hold the passage:   {self.quote_hit:.1f}%",
                f"  evidence holds it:         {self.evidence_hit:.1f}%",
                f"  answers shown:             {self.shown} ({100 * self.shown / n:.1f}%)",
                f"  withheld:                  {self.withheld} ({100 * self.withheld / n:.1f}%)",
                f"  not found:                 {self.not_found} ({100 * self.not_found / n:.1f}%)",
                f"  median seconds a question: {self.median_seconds:.1f}"]


def evaluate_answers(dataset_dir: str | Path, config: Config, out: str | Path, index: str | Path | None = None,
                     limit: int | None = None, progress: bool = True, pipeline=None) -> AnswerSummary:
    """Ask every judged question of the folder and grade the answers against its passages. The
    index is `index` (one built from the same documents: doc ids are paths relative to the folder),
    else one built from the folder's corpus under `out` (updated incrementally on later runs)."""
    dataset = load_beir(dataset_dir)
    if not dataset.passages:
        raise InputError(f"{dataset_dir} has no {PASSAGES} (the span that answers each question): write one with "
                         "`longrag compare --dataset FOLDER --synthesize N`, or add it (query-id, corpus-id, start, end)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _same_settings(out, dataset_dir, config, index)
    pipe = pipeline or _pipeline(dataset, config, out, index, progress)
    store = pipe.store
    changed = sorted({doc for spans in dataset.passages.values() for doc, a, b in spans
                      if doc not in store or store.span_text(doc, a, b)[1] != dataset.corpus[doc][a:b]})
    if changed:  # the passages' offsets must point at the same text in the index
        raise InputError(f"the index {pipe.store.path} does not hold {len(changed)} of the questions' documents as "
                         f"the folder has them ({', '.join(changed[:3])}): index that folder, or leave out --index")
    rows = _saved(out / ANSWERS)
    qids = [q for q in dataset.queries if q in dataset.passages][: limit or None]
    with (out / ANSWERS).open("a", encoding="utf-8") as log:
        for qid in tqdm([q for q in qids if q not in rows], desc="answers", unit="question", disable=not progress):
            answer = pipe.ask(dataset.queries[qid])
            doc_id, start, end = dataset.passages[qid][0]
            row = {"qid": qid, "question": dataset.queries[qid], "answer": answer.answer, "found": answer.found,
                   "withheld": answer.withheld, "check": answer.check, "seconds": answer.seconds,
                   "quotes": [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text} for c in answer.quotes],
                   "evidence": [[e.doc_id, e.start, e.end] for e in answer.evidence],
                   "doc": doc_id, "gold_span": [start, end]}
            row["grade"] = grade({"kind": "passage", "doc": doc_id}, row)
            rows[qid] = row
            log.write(json.dumps(row, ensure_ascii=False) + "\n")
            log.flush()
    return summarize([rows[q] for q in qids])


def summarize(rows: list[dict]) -> AnswerSummary:
    if not rows:
        raise InputError("no answered questions to grade")
    grades = [r["grade"] for r in rows]

    def share(key: str) -> float:
        return 100 * sum(bool(g.get(key)) for g in grades) / len(grades)

    return AnswerSummary(len(rows), share("quote_hit"), share("evidence_hit"), sum(g["shown"] for g in grades),
                         sum(g["withheld"] for g in grades), sum(g["not_found"] for g in grades),
                         statistics.median(r["seconds"] for r in rows))


def _same_settings(out: Path, dataset_dir, config: Config, index) -> None:
    """Answers saved in `out` are reused only for the same questions, index and settings."""
    settings = {"dataset": str(Path(dataset_dir).resolve()), "index": str(index), "config": config.to_dict()}
    path = out / "settings.json"
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")) != json.loads(json.dumps(settings)):
        raise InputError(f"{out} holds answers to another dataset, index or config: choose another --out, "
                         "or delete it to start again")
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")


def _saved(path: Path) -> dict[str, dict]:
    rows = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut by an interruption: asked again
                continue
            rows[row["qid"]] = row
    return rows


def _pipeline(dataset, config: Config, out: Path, index, progress: bool):
    from ..pipeline import Pipeline

    if index is not None:
        return Pipeline.load(index, config=config)
    documents = [Document(doc_id, doc_id, text, hashlib.sha256(text.encode()).hexdigest())
                 for doc_id, text in dataset.corpus.items()]
    pipe = Pipeline(config)
    pipe.index_documents(documents, out / "index", progress=progress)
    return pipe
