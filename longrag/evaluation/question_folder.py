"""The folder `longrag compare --synthesize` writes: a BEIR folder a person can review and edit,
and the log of every passage tried (progress.jsonl) that lets an interrupted run continue."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import InputError

FILES = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "passages.jsonl", "rejected.jsonl", "synthesis.json")
PROGRESS = "progress.jsonl"


def open_folder(out: Path, identity: dict) -> list[dict]:
    """The log of an earlier run of the same settings in `out` (empty for a new folder); a folder
    written otherwise, or holding other files, is refused untouched."""
    meta = out / "synthesis.json"
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder for the questions")
    if meta.is_file():
        earlier = json.loads(meta.read_text(encoding="utf-8")).get("identity", {})
        changed = [k for k in identity if earlier.get(k) != identity[k]]
        if changed:
            raise InputError(f"{out} holds questions written with other settings ({', '.join(changed)} differ): "
                             "choose another output folder, or delete that one to start again")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty and holds no synthesis.json: it is not a folder of synthesized "
                         "questions; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    if not meta.is_file():
        _atomic(meta, json.dumps({"identity": identity, "finished": False}, indent=2))
    path = out / PROGRESS
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interruption: that passage is tried again
            break
    return records


def append(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_folder(out: Path, corpus: dict, records: list[dict], kept: list[dict], identity: dict,
                  report, short: list[str]) -> None:
    """The BEIR folder from the log: judged questions in queries.jsonl and qrels/test.tsv, ambiguous
    ones in queries.jsonl only (marked), every question's passage in passages.jsonl, the rest in
    rejected.jsonl with its reason."""
    queries, qrels, spans = [], ["query-id\tcorpus-id\tscore"], []
    for number, record in enumerate(kept, 1):
        qid, ambiguous = f"q{number:04d}", record["status"] == "ambiguous"
        queries.append({"_id": qid, "text": record["question"],
                        "metadata": {"doc_id": record["doc_id"], "ambiguous": ambiguous}})
        if not ambiguous:
            qrels.append(f"{qid}\t{record['doc_id']}\t1")
        spans.append({"query-id": qid, "corpus-id": record["doc_id"], "start": record["start"], "end": record["end"],
                      "text": corpus[record["doc_id"]][record["start"]:record["end"]], "margin": record["margin"],
                      "ambiguous": ambiguous, "rival": record["rival"]})
    rejected = [{k: r.get(k) for k in ("question", "doc_id", "start", "end", "reason")}
                for r in records if r["status"] == "rejected"]
    reasons: dict[str, int] = {}
    for row in rejected:
        kind = re.sub(r"\s*[\"(].*", "", row["reason"])
        reasons[kind] = reasons.get(kind, 0) + 1
    report.written = len(qrels) - 1
    report.ambiguous = len(kept) - report.written
    report.tried = len(records)
    report.rejected = reasons
    timed = [r for r in records if "cpu_seconds" in r]
    summary = {"identity": identity, "finished": True,
               "question_seconds": round(sum(r["seconds"] for r in timed), 1),  # the passages' work, models loaded
               "question_cpu_seconds": round(sum(r["cpu_seconds"] for r in timed), 1), "timed_passages": len(timed), "asked": report.asked, "written": report.written,
               "ambiguous": report.ambiguous, "passages_tried": report.tried, "rejected": reasons,
               "filter_rate": round(report.filter_rate, 3), "short_documents": short}
    _atomic(out / "corpus.jsonl", _jsonl([{"_id": d, "text": t} for d, t in corpus.items()]))
    _atomic(out / "queries.jsonl", _jsonl(queries))
    _atomic(out / "qrels" / "test.tsv", "\n".join(qrels) + "\n")
    _atomic(out / "passages.jsonl", _jsonl(spans))
    _atomic(out / "rejected.jsonl", _jsonl(rejected))
    _atomic(out / "synthesis.json", json.dumps(summary, indent=2))
