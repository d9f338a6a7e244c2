"""BM25, the one lexical ranker: index search, the `bm25` evidence selector and the evaluation
baseline all use it, each with tokenizer settings it records.

Tokenizing (stopwords, Snowball stemming) is bm25s's; the scoring is here because an index is
made of shards written at different times, and a score must not depend on which shard a text
landed in: each shard keeps only its term counts, and the collection statistics (number of texts,
document frequencies, mean length) are pooled over all shards at query time. The formula is
bm25s's "lucene" variant (Kamphuis et al. 2020), k1 = 1.5, b = 0.75, so one shard scores exactly
as bm25s would.

Stemming lets "renewal" in a question meet "renew" in a clause; the evidence selector uses it,
the index and the baseline do not (docs/results.md, "Ask", has the measurements).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
import Stemmer
from scipy import sparse

SETTINGS_FILE = "longrag_tokenizer.json"
COUNTS_FILE = "terms.npz"
K1, B = 1.5, 0.75


@dataclass(frozen=True)
class LexicalSettings:
    stopwords: str = "en"
    stem: bool = False  # Snowball English stemming


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], settings: LexicalSettings) -> list[list[str]]:
    return bm25s.tokenize(list(texts), stopwords=settings.stopwords, stemmer=_stemmer() if settings.stem else None,
                          return_ids=False, show_progress=False)


class TermCounts:
    """How often each term occurs in each text of one part (a shard) — all BM25 keeps per part."""

    def __init__(self, terms: np.ndarray, counts: sparse.csc_matrix):
        self.terms = terms  # sorted vocabulary
        self.counts = counts  # texts × terms

    @classmethod
    def build(cls, texts: Sequence[str], settings: LexicalSettings) -> "TermCounts":
        tokens = tokenize(texts, settings)
        vocabulary = sorted({t for text in tokens for t in text})
        column = {t: i for i, t in enumerate(vocabulary)}  # not a searchsorted over every token: as a
        # fixed-width string array that held every token at the longest term's width (0.8 GB for 100k pieces)
        lengths = [len(t) for t in tokens]
        rows = np.repeat(np.arange(len(tokens)), lengths)
        cols = np.fromiter((column[t] for text in tokens for t in text), np.int64, count=sum(lengths))
        terms = np.array(vocabulary, dtype=str)
        counts = sparse.csc_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(tokens), len(terms)),
                                   dtype=np.float32)
        counts.sum_duplicates()
        return cls(terms, counts)

    @classmethod
    def concatenate(cls, parts: Sequence["TermCounts"], keep: Sequence[np.ndarray]) -> "TermCounts":
        """The kept rows of several parts, one after another (a merge of shards)."""
        terms = np.array(sorted(set().union(*(p.terms.tolist() for p in parts))), dtype=str)
        blocks = []
        for part, rows in zip(parts, keep):
            remap = sparse.csr_matrix((np.ones(len(part.terms), np.float32),
                                       (np.arange(len(part.terms)), np.searchsorted(terms, part.terms))),
                                      shape=(len(part.terms), len(terms)))
            blocks.append(part.counts.tocsr()[rows] @ remap)
        if not blocks:
            return cls(terms, sparse.csc_matrix((0, 0), dtype=np.float32))
        return cls(terms, sparse.vstack(blocks, format="csc"))

    @property
    def size(self) -> int:
        return self.counts.shape[0]

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.asarray(self.counts.sum(axis=1)).ravel()

    @cached_property
    def total_length(self) -> float:
        return float(self.lengths.sum())

    @cached_property
    def document_frequency(self) -> np.ndarray:
        return np.diff(self.counts.indptr)

    @cached_property
    def _column(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.terms.tolist())}

    def frequency(self, term: str) -> int:
        column = self._column.get(term)
        return 0 if column is None else int(self.document_frequency[column])

    def score(self, terms: Sequence[str], idf: dict[str, float], mean_length: float) -> np.ndarray:
        """BM25 of every text of this part, given pooled statistics."""
        scores = np.zeros(self.size, np.float32)
        for term in terms:  # only the texts holding a query term are touched
            column = self._column.get(term)
            if column is None:
                continue
            lo, hi = self.counts.indptr[column], self.counts.indptr[column + 1]
            rows, tf = self.counts.indices[lo:hi], self.counts.data[lo:hi]
            norm = K1 * (1 - B + B * self.lengths[rows] / max(mean_length, 1e-9))
            scores[rows] += idf[term] * tf / (norm + tf)
        return scores

    def save(self, file: Path) -> None:
        c = self.counts
        np.savez(file, terms=self.terms, data=c.data, indices=c.indices, indptr=c.indptr, shape=np.array(c.shape))

    @classmethod
    def load(cls, file: Path) -> "TermCounts":
        with np.load(file, allow_pickle=False) as f:
            counts = sparse.csc_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            return cls(f["terms"], counts)


def pooled_scores(query: str, parts: Sequence[TermCounts], settings: LexicalSettings) -> list[np.ndarray]:
    """BM25 of every text of every part, with statistics pooled over all parts."""
    terms = tokenize([query], settings)[0]  # a repeated query term counts again, as in bm25s
    total = sum(p.size for p in parts)
    mean_length = sum(p.total_length for p in parts) / max(total, 1)
    idf = {}
    for term in set(terms):
        df = sum(p.frequency(term) for p in parts)
        idf[term] = float(np.log(1 + (total - df + 0.5) / (df + 0.5)))
    return [p.score(terms, idf, mean_length) for p in parts]


def best(scores: np.ndarray, k: int, drop_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the k best, best first; zeros (no shared term) dropped unless `drop_zero` is off."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    rows = np.argpartition(-scores, k - 1)[:k]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    if drop_zero:
        rows = rows[scores[rows] > 0]
    return scores[rows], rows.astype(np.int64)


class BM25:
    """BM25 over one list of texts; rows are positions in that list."""

    def __init__(self, counts: TermCounts, settings: LexicalSettings = LexicalSettings()):
        self.counts, self.settings = counts, settings

    @classmethod
    def build(cls, texts: Sequence[str], settings: LexicalSettings = LexicalSettings()) -> "BM25":
        return cls(TermCounts.build(texts, settings), settings)

    @property
    def size(self) -> int:
        return self.counts.size

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text (0 where no query term occurs)."""
        return pooled_scores(query, [self.counts], self.settings)[0].astype(np.float64)

    def search(self, query: str, k: int, drop_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k texts, best first; texts sharing no term with the query are
        dropped unless `drop_zero` is off (a baseline ranking every document)."""
        return best(self.scores(query).astype(np.float32), k, drop_zero)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.counts.save(folder / COUNTS_FILE)
        (folder / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings)))

    @classmethod
    def load(cls, folder: Path) -> "BM25":
        settings = LexicalSettings(**json.loads((folder / SETTINGS_FILE).read_text()))
        return cls(TermCounts.load(folder / COUNTS_FILE), settings)


def bm25_scores(question: str, texts: list[str], settings: LexicalSettings) -> np.ndarray:
    """BM25 score of every text for the question, over an index of just these texts."""
    return BM25.build(texts, settings).scores(question)
