"""The built-in real sets, read in place from the data root: QMSum, SQuALITY and CUAD.

Every reader fails with an `InputError` that names the file and says what would be valid,
because a benchmark that silently drops or mislabels queries reports wrong numbers.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ..errors import InputError
from .data_files import data_file, read_jsonl
from .retrieval_dataset import RetrievalDataset


def qmsum(root: str | Path | None = None) -> RetrievalDataset:
    """QMSum val: meetings are documents, each *specific* query is relevant to its meeting, and its
    relevant turn spans are the gold passages.

    Text is the turns joined as "{speaker}: {content}\\n" (empty turns kept, so turn indices stay
    aligned); a span runs from the first character of its first turn to the end of its last
    turn's content. General queries ("summarise the meeting") fit every meeting alike, so they do
    not test retrieval and are left out (counted in meta["general_queries_excluded"]).
    """
    path = data_file(root, "qmsum/val.jsonl")
    corpus, queries, qrels, passages = {}, {}, {}, {}
    general = 0
    for index, (line_no, row) in enumerate(read_jsonl(path)):
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
    is asked of several dev stories); meta["repeated_query_texts"] counts them, and
    `distinct_questions=True` keeps only questions whose text is asked of one story.
    A story listed twice is kept once.
    """
    if split not in ("dev", "train"):
        raise InputError(f"unknown SQuALITY split {split!r}: use 'dev' or 'train'")
    path = data_file(root, f"squality/{split}.jsonl")
    corpus, queries, qrels = {}, {}, {}
    duplicates = 0
    for _, row in read_jsonl(path):
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
    path = data_file(root, "cuad/dev.jsonl")
    corpus, queries, qrels, passages = {}, {}, {}, {}
    counts = Counter()
    not_found: list[str] = []
    for index, (line_no, row) in enumerate(read_jsonl(path)):
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
