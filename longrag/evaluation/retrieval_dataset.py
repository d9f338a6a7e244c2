"""The dataset type every loader returns: BEIR shape (corpus, queries, qrels), optionally with
passage-level truth, and its consistency check."""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InputError

Span = tuple[str, int, int]  # (doc_id, start, end): a half-open character range of corpus[doc_id]


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
            problems.append(f"qrels name {len(unknown_queries)} unknown query ids: {few_ids(unknown_queries)}")
        unknown_docs = sorted({doc for docs in self.qrels.values() for doc in docs if doc not in self.corpus})
        if unknown_docs:
            problems.append(f"qrels name {len(unknown_docs)} unknown doc ids: {few_ids(unknown_docs)} "
                            f"(corpus ids look like {few_ids(list(self.corpus), 3)})")
        unjudged = [qid for qid in self.queries if not any(r > 0 for r in self.qrels.get(qid, {}).values())]
        if unjudged:
            problems.append(f"{len(unjudged)} queries have no relevant document in qrels: {few_ids(unjudged)}")
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
            problems.append(f"passages name {len(unknown)} unknown query ids: {few_ids(unknown)}")
        bad = []
        for qid, spans in self.passages.items():
            for doc_id, start, end in spans:
                text = self.corpus.get(doc_id)
                if text is None or not 0 <= start < end <= len(text) or self.qrels.get(qid, {}).get(doc_id, 0) <= 0:
                    bad.append(f"{qid}:{doc_id}[{start}:{end}]")
        if bad:
            problems.append(f"{len(bad)} passage spans are outside their document or in a document "
                            f"not relevant to their query: {few_ids(bad)}")
        return problems


def few_ids(ids: list[str], k: int = 5) -> str:
    """The first `k` ids, quoted, and how many more there are: for error messages."""
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f", … (+{len(ids) - k} more)" if len(ids) > k else "")
