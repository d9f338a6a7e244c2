"""BM25 (bm25s), the one lexical ranker: index search, the `bm25` evidence selector and the
evaluation baseline all use it, each with tokenizer settings it records.

Stemming (Snowball, PyStemmer) lets "renewal" in a question meet "renew" in a clause; the
evidence selector uses it, the index and the baseline do not (docs/results.md, "Ask", has the measurements).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

SETTINGS_FILE = "longrag_tokenizer.json"


@dataclass(frozen=True)
class LexicalSettings:
    stopwords: str = "en"
    stem: bool = False  # Snowball English stemming


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


class BM25:
    """BM25 over a list of texts; rows are positions in that list."""

    def __init__(self, settings: LexicalSettings = LexicalSettings(), retriever: bm25s.BM25 | None = None):
        self.settings = settings
        self.retriever = retriever

    def _tokenize(self, texts: list[str], return_ids: bool = True):
        return bm25s.tokenize(texts, stopwords=self.settings.stopwords, stemmer=_stemmer() if self.settings.stem else None,
                              return_ids=return_ids, show_progress=False)

    @classmethod
    def build(cls, texts: list[str], settings: LexicalSettings = LexicalSettings()) -> "BM25":
        index = cls(settings, bm25s.BM25())
        index.retriever.index(index._tokenize(texts), show_progress=False)
        return index

    @property
    def size(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def search(self, query: str, k: int, drop_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k texts, best first; texts sharing no term with the query are
        dropped unless `drop_zero` is off (a baseline ranking every document)."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        rows, scores = self.retriever.retrieve(self._tokenize([query]), k=k, show_progress=False, n_threads=1)
        keep = scores[0] > 0 if drop_zero else slice(None)
        return scores[0][keep], rows[0][keep]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every text (0 where no query term occurs)."""
        terms = self._tokenize([query], return_ids=False)[0]
        return np.asarray(self.retriever.get_scores(terms), dtype=np.float64)

    def save(self, folder: Path) -> None:
        self.retriever.save(folder, show_progress=False)
        (folder / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings)))

    @classmethod
    def load(cls, folder: Path) -> "BM25":
        """An index saved by `save`; one saved before settings were recorded used the defaults."""
        settings_file = folder / SETTINGS_FILE
        settings = LexicalSettings(**json.loads(settings_file.read_text())) if settings_file.is_file() else LexicalSettings()
        return cls(settings, bm25s.BM25.load(folder, show_progress=False))


def bm25_scores(question: str, texts: list[str], settings: LexicalSettings) -> np.ndarray:
    """BM25 score of every text for the question, over an index of just these texts."""
    return BM25.build(texts, settings).scores(question)
