"""BEIR folders (corpus.jsonl, queries.jsonl, qrels.tsv), or a folder of documents judged by the
queries.jsonl and qrels.tsv placed in it.

Every reader fails with an `InputError` that names the file and says what would be valid,
because a benchmark that silently drops or mislabels queries reports wrong numbers.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..documents.loaders import UnreadableFile, discover, load_file
from ..errors import InputError
from .data_files import read_jsonl
from .retrieval_dataset import RetrievalDataset, few_ids


def load_beir(path: str | Path) -> RetrievalDataset:
    """Read a BEIR folder: corpus.jsonl (`_id`, `text`, optional `title`), queries.jsonl
    (`_id`, `text`) and qrels.tsv or qrels/test.tsv (`query-id corpus-id score`).

    A folder of documents without corpus.jsonl (what `longrag index` reads) works too: its files
    are the corpus, read by the same loaders, with their paths relative to the folder as doc ids,
    judged by the queries.jsonl and qrels.tsv placed in it.

    As in BEIR, queries without any judgement are left out (their number is in
    meta["queries_without_qrels"]): BEIR query files often hold train/dev queries too.
    A title is prepended to its text as its own paragraph.
    """
    folder = Path(path).expanduser()
    layout = "corpus.jsonl (or documents), queries.jsonl and qrels.tsv (or qrels/test.tsv)"
    if not folder.exists():
        raise InputError(f"dataset folder {folder} does not exist (it must hold {layout})")
    if not folder.is_dir():
        raise InputError(f"{folder} is a file; a dataset is a folder holding {layout}")
    queries_file = folder / "queries.jsonl"
    qrels_file = next((f for f in (folder / "qrels.tsv", folder / "qrels" / "test.tsv") if f.is_file()), None)
    missing = [] if queries_file.is_file() else ["queries.jsonl"]
    if qrels_file is None:
        missing.append("qrels.tsv (or qrels/test.tsv)")
    if missing:
        raise InputError(f"dataset folder {folder} lacks {', '.join(missing)}; it must hold {layout}")
    corpus_file = folder / "corpus.jsonl"
    corpus, meta = (_beir_corpus(corpus_file), {}) if corpus_file.is_file() else folder_corpus(folder)
    corpus_name = corpus_file.name if corpus_file.is_file() else f"the documents of {folder}"

    all_queries: dict[str, str] = {}
    for line_no, row in read_jsonl(queries_file):
        qid, text = _fields(row, queries_file, line_no)
        all_queries[qid] = text
    if not all_queries:
        raise InputError(f"{queries_file} holds no queries; each line must be a JSON object with _id and text")

    qrels = _read_qrels(qrels_file)
    unknown_q = [qid for qid in qrels if qid not in all_queries]
    if unknown_q:
        raise InputError(f"{qrels_file} names {len(unknown_q)} query ids not in queries.jsonl: {few_ids(unknown_q)} "
                         f"(queries.jsonl has ids like {few_ids(list(all_queries), 3)})")
    unknown_d = sorted({doc for docs in qrels.values() for doc in docs if doc not in corpus})
    if unknown_d:
        raise InputError(f"{qrels_file} names {len(unknown_d)} doc ids not in {corpus_name}: {few_ids(unknown_d)} "
                         f"(it has ids like {few_ids(list(corpus), 3)})")
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    meta = {"source": str(folder), "qrels_file": str(qrels_file),
            "queries_without_qrels": len(all_queries) - len(queries), **meta}
    passages = _read_passages(folder / PASSAGES, queries) if (folder / PASSAGES).is_file() else None
    return RetrievalDataset(folder.name, corpus, queries, qrels, passages, meta).validate()


PASSAGES = "passages.jsonl"  # optional: the span that answers each query (query-id, corpus-id, start, end)


def _read_passages(path: Path, queries: dict[str, str]) -> dict[str, list]:
    """Gold spans of the judged queries (`longrag compare --synthesize` writes them; rows of queries
    without a judgement are left out, as those queries are)."""
    passages: dict[str, list] = {}
    for line_no, row in read_jsonl(path):
        missing = [key for key in ("query-id", "corpus-id", "start", "end") if key not in row]
        if missing:
            raise InputError(f"{path}:{line_no}: missing {', '.join(missing)} "
                             "(each line: query-id, corpus-id, start, end)")
        if str(row["query-id"]) not in queries:
            continue
        try:
            span = (str(row["corpus-id"]), int(row["start"]), int(row["end"]))
        except (TypeError, ValueError):
            raise InputError(f"{path}:{line_no}: start and end must be whole numbers (character offsets)") from None
        passages.setdefault(str(row["query-id"]), []).append(span)
    return passages


def _beir_corpus(corpus_file: Path) -> dict[str, str]:
    corpus: dict[str, str] = {}
    for line_no, row in read_jsonl(corpus_file):
        doc_id, text = _fields(row, corpus_file, line_no)
        if doc_id in corpus:
            raise InputError(f"{corpus_file}:{line_no}: duplicate _id {doc_id!r}")
        title = str(row.get("title") or "").strip()
        corpus[doc_id] = f"{title}\n\n{text}" if title else text
    if not corpus:
        raise InputError(f"{corpus_file} holds no documents; each line must be a JSON object with _id and text")
    return corpus


def folder_corpus(folder: Path) -> tuple[dict[str, str], dict]:
    """The folder's documents as `longrag index` reads them; unreadable ones are counted in meta."""
    found, skipped = discover([folder])
    corpus, unreadable = {}, []
    for file, root in found:
        try:
            document = load_file(file, root)
        except UnreadableFile as exc:
            unreadable.append(f"{file.name}: {exc}")
            continue
        corpus[document.doc_id] = document.text
    if not corpus:
        raise InputError(f"{folder} holds no corpus.jsonl and no readable documents "
                         f"({len(unreadable)} unreadable, {len(skipped)} of unsupported formats)")
    ignored = sum(Path(s.path).name not in ("queries.jsonl", "qrels.tsv") for s in skipped)
    return corpus, {"unreadable_documents": unreadable, "unsupported_files": ignored}


def _fields(row: dict, path: Path, line_no: int) -> tuple[str, str]:
    missing = [key for key in ("_id", "text") if key not in row]
    if missing:
        raise InputError(f"{path}:{line_no}: missing {' and '.join(missing)} (has {', '.join(sorted(row)) or 'nothing'})")
    return str(row["_id"]), str(row["text"])


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 3:
                raise InputError(f"{path}:{line_no}: expected 3 tab-separated columns "
                                 f"(query-id, corpus-id, score), got {len(row)}")
            qid, doc_id, score = (cell.strip() for cell in row)
            try:
                relevance = int(score)
            except ValueError:
                if line_no == 1:  # the header line `query-id corpus-id score`
                    continue
                raise InputError(f"{path}:{line_no}: score {score!r} is not an integer") from None
            qrels.setdefault(qid, {})[doc_id] = relevance
    if not qrels:
        raise InputError(f"{path} holds no judgements (rows: query-id, corpus-id, score)")
    return qrels
