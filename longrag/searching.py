"""Search, from a query to located hits: the query and k checked, the query encoded once, documents
ranked as the index's mode says (retrieval.py), and with a generator the best segments of those
documents judged by it (the `rerank` selector), each hit then placed on its page and section.
Pipeline.search calls it; it holds the search policy so that Pipeline only composes."""
from __future__ import annotations

from . import retrieval
from .config import Config
from .documents.locations import with_locations
from .encoders import Encoder
from .errors import InputError
from .generation import GeneratorBackend
from .index import IndexStore
from .reasoning import candidates_of, make_selector
from .types import Hit


def search(store: IndexStore, encoder: Encoder, config: Config, query: str, k: int | None = None,
           reranker: GeneratorBackend | None = None) -> list[Hit]:
    """The k (default `search.k`) best documents for `query`, each with its best-matching span. With
    `reranker`, a generator judges the top `ask.candidates` segments of those documents; documents
    are re-ordered by their best segment, which becomes their span, and its log p(Yes), normalised
    over {Yes, No}, their score."""
    if not query or not query.strip():
        raise InputError("empty query")
    k = config.search.k if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive whole number of documents, got {k!r}")
    vector = encoder.encode_queries([query])[0]
    hits = retrieval.search(store, query, vector, config, k)
    if reranker is None or not hits:
        return with_locations(store, hits)
    settings = config.ask
    judge = make_selector("rerank", count_tokens=reranker.count_tokens, encoder=encoder, generator=reranker,
                          first_stage=settings.first_stage, candidates=settings.candidates)
    candidates = [c for hit in hits for c in candidates_of(store, hit.doc_id)]
    ranked = retrieval.rerank(store, hits, judge.rank(query, candidates), config.search.snippet_chars)
    return with_locations(store, ranked)
