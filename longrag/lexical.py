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

Fields: besides its text ("body"), a text may have short fields — its document's name ("name")
and its section headings ("heading") — counted apart. A text's score is the sum over fields of
each field's own BM25 (its own mean length), times the field's weight, given at query time. A
field scores only where the question's words are in it, by how rare they are in that field or the
texts (a word that many names or clauses hold adds little), and a field weighted 0 is left out,
so the body alone scores exactly as plain BM25. (BM25F proper, Robertson et al. 2004, saturates
all fields' frequencies together, so a name can add at most its word's idf: measured in
docs/results.md, "Questions that name their document", too little to lift the named document.)
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
FIELD_FILES = {"name": "name_terms.npz", "heading": "heading_terms.npz"}  # the fields besides the body
K1, B = 1.5, 0.75
BODY = "body"


@dataclass(frozen=True)
class LexicalSettings:
    stopwords: str = "en"
    stem: bool = False  # Snowball English stemming
    fields: tuple[str, ...] = ()  # fields counted besides the body (FIELD_FILES); () in indexes written before them

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))  # a list when read from JSON


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

    def rows_of(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, frequencies) of the texts holding `term`."""
        column = self._column.get(term)
        if column is None:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        lo, hi = self.counts.indptr[column], self.counts.indptr[column + 1]
        return self.counts.indices[lo:hi], self.counts.data[lo:hi]

    def save(self, file: Path) -> None:
        c = self.counts
        np.savez(file, terms=self.terms, data=c.data, indices=c.indices, indptr=c.indptr, shape=np.array(c.shape))

    @classmethod
    def load(cls, file: Path) -> "TermCounts":
        with np.load(file, allow_pickle=False) as f:
            counts = sparse.csc_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            return cls(f["terms"], counts)


class Fields:
    """The term counts of one part (a shard) by field: "body" always, FIELD_FILES' fields where
    counted; every field has a row per text."""

    def __init__(self, counts: dict[str, TermCounts]):
        self.counts = counts

    @property
    def size(self) -> int:
        return self.counts[BODY].size

    def frequency(self, term: str, field: str) -> int:
        """Texts holding `term` in `field` or in their body: a field's word is as rare as it is
        anywhere ("patent" in a name is common in licence texts, "CDDL" is not)."""
        if field not in self.counts:
            return 0
        rows = self.counts[field].rows_of(term)[0]
        if field == BODY:
            return len(rows)
        return len(np.union1d(rows, self.counts[BODY].rows_of(term)[0]))

    def score(self, terms: Sequence[str], idf: dict[str, dict[str, float]], means: dict[str, float],
              weights: dict[str, float]) -> np.ndarray:
        """Weighted sum of each field's BM25, for every text of this part, given pooled statistics
        (only texts holding a query term are touched)."""
        scores = np.zeros(self.size, np.float32)
        for field, weight in weights.items():
            counts = self.counts.get(field)
            for term in terms if counts is not None else ():
                rows, tf = counts.rows_of(term)
                if len(rows):
                    norm = K1 * (1 - B + B * counts.lengths[rows] / max(means[field], 1e-9))
                    scores[rows] += (weight * idf[field][term] * tf / (norm + tf)).astype(np.float32)
        return scores


def pooled_scores(query: str, parts: Sequence[Fields], settings: LexicalSettings,
                  weights: dict[str, float] | None = None) -> list[np.ndarray]:
    """Field-weighted BM25 of every text of every part, with statistics pooled over all parts.
    `weights`: field → weight, the body's 1 unless given; fields weighted 0 or not counted in any
    part are left out."""
    weights = {f: w for f, w in {BODY: 1.0, **(weights or {})}.items()
               if w > 0 and any(f in p.counts for p in parts)}
    terms = tokenize([query], settings)[0]  # a repeated query term counts again, as in bm25s
    total = sum(p.size for p in parts)
    means = {f: sum(p.counts[f].total_length for p in parts if f in p.counts) / max(total, 1) for f in weights}
    idf = {f: {} for f in weights}
    for field in weights:
        for term in set(terms):
            df = sum(p.frequency(term, field) for p in parts)
            idf[field][term] = float(np.log(1 + (total - df + 0.5) / (df + 0.5)))
    return [p.score(terms, idf, means, weights) for p in parts]


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
    """BM25 over one list of texts; rows are positions in that list. `fields`: for each field the
    settings name, its text for every row."""

    def __init__(self, counts: TermCounts, settings: LexicalSettings = LexicalSettings(),
                 fields: dict[str, TermCounts] | None = None):
        self.counts, self.settings = counts, settings
        self.fields = Fields({BODY: counts, **(fields or {})})

    @classmethod
    def build(cls, texts: Sequence[str], settings: LexicalSettings = LexicalSettings(),
              fields: dict[str, Sequence[str]] | None = None) -> "BM25":
        fields = fields or {}
        if set(fields) != set(settings.fields) or any(len(v) != len(texts) for v in fields.values()):
            raise ValueError(f"fields {sorted(fields)} do not match the settings' {list(settings.fields)}, "
                             "one text per row")
        return cls(TermCounts.build(texts, settings), settings,
                   {name: TermCounts.build(values, settings) for name, values in fields.items()})

    @property
    def size(self) -> int:
        return self.counts.size

    def scores(self, query: str, weights: dict[str, float] | None = None) -> np.ndarray:
        """BM25F score of every text (0 where no query term occurs in a weighted field)."""
        return pooled_scores(query, [self.fields], self.settings, weights)[0].astype(np.float64)

    def search(self, query: str, k: int, drop_zero: bool = True,
               weights: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k texts, best first; texts sharing no term with the query are
        dropped unless `drop_zero` is off (a baseline ranking every document)."""
        return best(self.scores(query, weights).astype(np.float32), k, drop_zero)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.counts.save(folder / COUNTS_FILE)
        for name in self.settings.fields:
            self.fields.counts[name].save(folder / FIELD_FILES[name])
        (folder / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings)))

    @classmethod
    def load(cls, folder: Path) -> "BM25":
        settings = LexicalSettings(**json.loads((folder / SETTINGS_FILE).read_text()))
        unknown = set(settings.fields) - set(FIELD_FILES)
        if unknown:
            raise ValueError(f"BM25 fields {sorted(unknown)} were written by a newer longrag: upgrade longrag")
        return cls(TermCounts.load(folder / COUNTS_FILE), settings,
                   {name: TermCounts.load(folder / FIELD_FILES[name]) for name in settings.fields})


def bm25_scores(question: str, texts: list[str], settings: LexicalSettings,
                fields: dict[str, Sequence[str]] | None = None, weights: dict[str, float] | None = None) -> np.ndarray:
    """BM25F score of every text for the question, over an index of just these texts (and their
    `fields`, one text each, weighted by `weights`)."""
    if fields:
        settings = LexicalSettings(settings.stopwords, settings.stem, tuple(fields))
    return BM25.build(texts, settings, fields).scores(question, weights)
