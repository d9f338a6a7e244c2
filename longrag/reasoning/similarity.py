"""Embedding selector: candidate segment vectors ranked by cosine similarity to the question."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import RankingSelector
from .evidence import Candidate, TokenCounter


class EmbeddingSelector(RankingSelector):
    """Ranks by the index's stored segment vectors (late-chunked when the index was built that way).

    Candidates without a stored vector are encoded here as plain segments.
    """

    name = "embedding"

    def __init__(self, encoder, count_tokens: TokenCounter, extend_tokens: int = 0, known: dict | None = None):
        super().__init__(count_tokens, extend_tokens)
        self.encoder = encoder
        self.known = known or {}  # question → its vector, when the caller has encoded it already

    def similarities(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Cosine similarity of the question to every candidate (vectors are L2-normalised)."""
        query = query_vector(self.encoder, question, self.known)
        missing = [i for i, c in enumerate(candidates) if c.vector is None]
        vectors = [c.vector for c in candidates]
        if missing:
            encoded = self.encoder.encode_ids([self.encoder.tokenize(candidates[i].text).ids[: self.encoder.segment_window]
                                               for i in missing])
            for i, vector in zip(missing, encoded):
                vectors[i] = vector
        return np.stack(vectors) @ query

    def rank(self, question, candidates):
        scores = self.similarities(question, candidates)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]


def query_vector(encoder, question: str, known: dict) -> np.ndarray:
    """The question's vector: the one the caller already has, else encoded here."""
    return known[question] if question in known else encoder.encode_queries([question])[0]
