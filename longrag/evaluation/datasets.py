"""Retrieval datasets in BEIR shape (corpus, queries, qrels), optionally with passage-level truth.

The real sets (QMSum, SQuALITY, CUAD) are read in place from the shared data root; the project
ships no copy of them. Every reader fails with an `InputError` that names the file and says what
would be valid, because a benchmark that silently drops or mislabels queries reports wrong numbers.
"""
from __future__ import annotations

import csv
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError

Span = tuple[str, int, int]  # (doc_id, start, end): a half-open character range of corpus[doc_id]

BUILTIN_NAMES = ("qmsum", "squality", "cuad", "passkey", "needle")


def data_root() -> Path:
    """`$LONGRAG_DATA`, else the `shared/data` folder next to the repository checkout."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return Path(os.environ.get("LONGRAG_DATA", default))


@dataclass(frozen=True)
class RetrievalDataset:
    """A corpus, queries and graded relevance (qrels); `passages` adds gold character spans.

    `passages[query_id]` lists the spans of the corpus that answer the query, for judging
    passage/evidence retrieval rather than only which document was found.
    """

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    passages: dict[str, list[Span]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def limit(self, n: int, seed: int = 0) -> "RetrievalDataset":
        """At most `n` queries, chosen by `seed` (same n and seed → same queries); corpus kept whole,
        so the candidates and therefore the difficulty stay those of the full set."""
        if n < 1:
            raise InputError(f"limit must be at least 1 query, got {n}")
        if n >= len(self.queries):
            return self
        chosen = set(random.Random(seed).sample(sorted(self.queries), n))

        def keep(table: dict) -> dict:
            return {qid: value for qid, value in table.items() if qid in chosen}

        return replace(
            self,
            queries=keep(self.queries),
            qrels=keep(self.qrels),
            passages=None if self.passages is None else keep(self.passages),
            meta={**self.meta, "limited_from": len(self.queries), "limit_seed": seed},
        )

    def validate(self) -> "RetrievalDataset":
        """Raise `InputError` listing every inconsistency; return self so calls can be chained."""
        problems = []
        if not self.corpus:
            problems.append("the corpus is empty")
        if not self.queries:
            problems.append("there are no queries")
        unknown_queries = [qid for qid in self.qrels if qid not in self.queries]
        if unknown_queries:
            problems.append(f"qrels name {len(unknown_queries)} unknown query ids: {_few(unknown_queries)}")
        unknown_docs = sorted({doc for docs in self.qrels.values() for doc in docs if doc not in self.corpus})
        if unknown_docs:
            problems.append(f"qrels name {len(unknown_docs)} unknown doc ids: {_few(unknown_docs)} "
                            f"(corpus ids look like {_few(list(self.corpus), 3)})")
        unjudged = [qid for qid in self.queries if not any(r > 0 for r in self.qrels.get(qid, {}).values())]
        if unjudged:
            problems.append(f"{len(unjudged)} queries have no relevant document in qrels: {_few(unjudged)}")
        problems += self._passage_problems()
        if problems:
            raise InputError(f"dataset {self.name!r}: " + "; ".join(problems))
        return self

    def _passage_problems(self) -> list[str]:
        if self.passages is None:
            return []
        problems = []
        unknown = [qid for qid in self.passages if qid not in self.queries]
        if unknown:
            problems.append(f"passages name {len(unknown)} unknown query ids: {_few(unknown)}")
        bad = []
        for qid, spans in self.passages.items():
            for doc_id, start, end in spans:
                text = self.corpus.get(doc_id)
                if text is None or not 0 <= start < end <= len(text) or self.qrels.get(qid, {}).get(doc_id, 0) <= 0:
                    bad.append(f"{qid}:{doc_id}[{start}:{end}]")
        if bad:
            problems.append(f"{len(bad)} passage spans are outside their document or in a document "
                            f"not relevant to their query: {_few(bad)}")
        return problems


def _few(ids: list[str], k: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f", … (+{len(ids) - k} more)" if len(ids) > k else "")


# ---------------------------------------------------------------------------------------------
# BEIR folders


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
    corpus, meta = (_beir_corpus(corpus_file), {}) if corpus_file.is_file() else _folder_corpus(folder)
    corpus_name = corpus_file.name if corpus_file.is_file() else f"the documents of {folder}"

    all_queries: dict[str, str] = {}
    for line_no, row in _read_jsonl(queries_file):
        qid, text = _fields(row, queries_file, line_no)
        all_queries[qid] = text
    if not all_queries:
        raise InputError(f"{queries_file} holds no queries; each line must be a JSON object with _id and text")

    qrels = _read_qrels(qrels_file)
    unknown_q = [qid for qid in qrels if qid not in all_queries]
    if unknown_q:
        raise InputError(f"{qrels_file} names {len(unknown_q)} query ids not in queries.jsonl: {_few(unknown_q)} "
                         f"(queries.jsonl has ids like {_few(list(all_queries), 3)})")
    unknown_d = sorted({doc for docs in qrels.values() for doc in docs if doc not in corpus})
    if unknown_d:
        raise InputError(f"{qrels_file} names {len(unknown_d)} doc ids not in {corpus_name}: {_few(unknown_d)} "
                         f"(it has ids like {_few(list(corpus), 3)})")
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    meta = {"source": str(folder), "qrels_file": str(qrels_file),
            "queries_without_qrels": len(all_queries) - len(queries), **meta}
    return RetrievalDataset(folder.name, corpus, queries, qrels, None, meta).validate()


def _beir_corpus(corpus_file: Path) -> dict[str, str]:
    corpus: dict[str, str] = {}
    for line_no, row in _read_jsonl(corpus_file):
        doc_id, text = _fields(row, corpus_file, line_no)
        if doc_id in corpus:
            raise InputError(f"{corpus_file}:{line_no}: duplicate _id {doc_id!r}")
        title = str(row.get("title") or "").strip()
        corpus[doc_id] = f"{title}\n\n{text}" if title else text
    if not corpus:
        raise InputError(f"{corpus_file} holds no documents; each line must be a JSON object with _id and text")
    return corpus


def _folder_corpus(folder: Path) -> tuple[dict[str, str], dict]:
    """The folder's documents as `longrag index` reads them; unreadable ones are counted in meta."""
    from ..documents.loaders import UnreadableFile, discover, load_file

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


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; bad JSON names the file and line."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row


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


# ---------------------------------------------------------------------------------------------
# Built-in real sets


def _data_file(root: str | Path | None, relative: str) -> Path:
    base = Path(root) if root is not None else data_root()
    if not base.is_dir():
        raise InputError(f"data root {base} does not exist; set LONGRAG_DATA to the folder holding "
                         f"qmsum/, squality/ and cuad/")
    path = base / relative
    if not path.is_file():
        raise InputError(f"{relative} not found under data root {base}")
    return path


def qmsum(root: str | Path | None = None) -> RetrievalDataset:
    """QMSum val: meetings are documents, each *specific* query is relevant to its meeting, and its
    relevant turn spans are the gold passages.

    Text is the turns joined as "{speaker}: {content}\\n" (empty turns kept, so turn indices stay
    aligned); a span runs from the first character of its first turn to the end of its last
    turn's content. General queries ("summarise the meeting") fit every meeting alike, so they do
    not test retrieval and are left out (counted in meta["general_queries_excluded"]).
    """
    path = _data_file(root, "qmsum/val.jsonl")
    corpus, queries, qrels, passages = {}, {}, {}, {}
    general = 0
    for index, (line_no, row) in enumerate(_read_jsonl(path)):
        doc_id = f"qmsum-val-{index}"
        turns = row["meeting_transcripts"]
        lines = [f"{turn['speaker']}: {turn['content']}\n" for turn in turns]
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))
        corpus[doc_id] = "".join(lines)
        general += len(row.get("general_query_list", []))
        for j, item in enumerate(row["specific_query_list"]):
            qid = f"{doc_id}-q{j}"
            queries[qid] = item["query"]
            qrels[qid] = {doc_id: 1}
            spans = []
            for first, last in item["relevant_text_span"]:
                a, b = int(first), int(last)
                if not 0 <= a <= b < len(turns):
                    raise InputError(f"{path}:{line_no}: query {j} span [{first}, {last}] is outside "
                                     f"the meeting's {len(turns)} turns")
                spans.append((doc_id, starts[a], starts[b + 1] - 1))
            passages[qid] = spans
    meta = {"source": str(path), "general_queries_excluded": general,
            "repeated_query_texts": _repeated(queries)}
    return RetrievalDataset("qmsum", corpus, queries, qrels, passages, meta).validate()


def squality(root: str | Path | None = None, split: str = "dev",
             distinct_questions: bool = False) -> RetrievalDataset:
    """SQuALITY stories as documents; questions 2-5 (which name characters or events) → their story.

    Question 1 is "What is the plot of the story?" for every story, so it cannot pick a story and
    is left out. Some later questions are generic too ("Describe the setting of the story."
    is asked of 9 dev stories); meta["repeated_query_texts"] counts them, and
    `distinct_questions=True` keeps only questions whose text is asked of one story.
    A story listed twice is kept once.
    """
    if split not in ("dev", "train"):
        raise InputError(f"unknown SQuALITY split {split!r}: use 'dev' or 'train'")
    path = _data_file(root, f"squality/{split}.jsonl")
    corpus, queries, qrels = {}, {}, {}
    duplicates = 0
    for _, row in _read_jsonl(path):
        doc_id = str(row["metadata"]["passage_id"])
        if doc_id in corpus:
            duplicates += 1
        corpus.setdefault(doc_id, row["document"])
        for question in row["questions"]:
            if int(question["question_number"]) == 1:
                continue
            qid = f"squality-{split}-{doc_id}-q{question['question_number']}"
            if qid in queries and queries[qid] == question["question_text"]:
                continue  # the same question of a repeated story
            while qid in queries:
                qid += "+"
            queries[qid] = question["question_text"]
            qrels[qid] = {doc_id: 1}
    repeated = _repeated(queries)
    if distinct_questions:
        shared = {text for text, count in Counter(queries.values()).items() if count > 1}
        queries = {qid: text for qid, text in queries.items() if text not in shared}
        qrels = {qid: docs for qid, docs in qrels.items() if qid in queries}
    meta = {"source": str(path), "split": split, "duplicate_stories": duplicates,
            "repeated_query_texts": repeated, "distinct_questions": distinct_questions}
    return RetrievalDataset(f"squality-{split}", corpus, queries, qrels, None, meta).validate()


# L-Eval wraps each CUAD question in the same instruction; the category and the question are the query.
_CUAD_INSTRUCTION = re.compile(
    r'Highlight the parts \(if any\) of this contract related to "(?P<category>.+?)" that should be '
    r"reviewed by a lawyer\.\s*Details:\s*(?P<question>.+)", re.S)
_NO_ANSWER = {"", "none", "not mentioned", "n/a"}


def cuad(root: str | Path | None = None) -> RetrievalDataset:
    """CUAD contracts (L-Eval packaging): each clause question → its contract, and the verbatim
    answer excerpt → its character span (first occurrence).

    The query is "{category}: {question}" with L-Eval's instruction boilerplate removed. The same
    15 questions are asked of many contracts, so the document a question belongs to is not
    identifiable from its text: use this set for evidence retrieval inside the named contract,
    not for choosing among contracts (meta["repeated_query_texts"]). Answers that are empty/"None"
    or not found verbatim get no span and are counted in meta, never dropped silently.
    """
    path = _data_file(root, "cuad/dev.jsonl")
    corpus, queries, qrels, passages = {}, {}, {}, {}
    counts = Counter()
    not_found: list[str] = []
    for index, (line_no, row) in enumerate(_read_jsonl(path)):
        doc_id = f"cuad-dev-{index}"
        text = row["input"]
        corpus[doc_id] = text
        if len(row["instructions"]) != len(row["outputs"]):
            raise InputError(f"{path}:{line_no}: {len(row['instructions'])} instructions but "
                             f"{len(row['outputs'])} outputs; they must be aligned by index")
        for j, (instruction, answer) in enumerate(zip(row["instructions"], row["outputs"])):
            qid = f"{doc_id}-q{j}"
            match = _CUAD_INSTRUCTION.fullmatch(instruction.strip())
            if match:
                queries[qid] = f"{match['category']}: {' '.join(match['question'].split())}"
            else:
                counts["instructions_unparsed"] += 1
                queries[qid] = instruction.strip()
            qrels[qid] = {doc_id: 1}
            if answer.strip().lower() in _NO_ANSWER:
                counts["answers_empty"] += 1
                continue
            start = text.find(answer)
            if start < 0 and answer.strip() != answer:
                answer = answer.strip()
                start = text.find(answer)
            if start < 0:
                counts["answers_not_found"] += 1
                not_found.append(qid)
                continue
            if text.count(answer) > 1:
                counts["answers_ambiguous"] += 1  # first occurrence used
            passages[qid] = [(doc_id, start, start + len(answer))]
    meta = {"source": str(path), "answers_not_found": 0, "answers_empty": 0, "answers_ambiguous": 0,
            "instructions_unparsed": 0, **counts, "answers_not_found_ids": not_found,
            "repeated_query_texts": _repeated(queries)}
    return RetrievalDataset("cuad", corpus, queries, qrels, passages, meta).validate()


def _repeated(queries: dict[str, str]) -> int:
    """How many queries share their exact text with another query (they cannot all be answered)."""
    counts = Counter(queries.values())
    return sum(count for count in counts.values() if count > 1)


def load_dataset(name_or_path: str | Path, root: str | Path | None = None, **options) -> RetrievalDataset:
    """A built-in set by name, a synthetic task ("passkey-4096", or "passkey" with length=4096),
    or a BEIR folder path. `options` go to the builder (e.g. split="train", n_docs=50)."""
    key = str(name_or_path)
    real = {"qmsum": qmsum, "squality": squality, "cuad": cuad}
    if key in real:
        return real[key](root, **options)
    synthetic_name = re.fullmatch(r"(passkey|needle)(?:-(\d+))?", key)
    if synthetic_name:
        from . import synthetic

        task, length = synthetic_name.group(1), synthetic_name.group(2)
        if length is None and "length" not in options:
            raise InputError(f"{task} needs a length in tokens: '{task}-4096' or length=4096 "
                             f"(standard lengths: {', '.join(map(str, synthetic.LENGTHS))})")
        if length is not None:
            options["length"] = int(length)
        return getattr(synthetic, task)(root=root, **options)
    path = Path(key).expanduser()
    if path.exists() or "/" in key or os.sep in key:
        return load_beir(path)
    raise InputError(f"unknown dataset {key!r}: use one of {', '.join(BUILTIN_NAMES)} "
                     f"(passkey/needle as 'passkey-<tokens>'), or the path of a BEIR folder")
