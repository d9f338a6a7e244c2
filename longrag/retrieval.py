"""Query → ranked documents, each with its best-matching span, for every index mode.

chunks / late_chunks: a document scores its best segment (max-sim).
document: one vector per document; the span is its segment closest to the query.
hybrid: the rankings named in `search.fusion` (document vectors, segment max-sim, BM25F over
segments with their document's name and their headings as fields) fused by `search.fusion_method`:
convex (default; mean of scores scaled from 0, Bruch et al. 2023), minmax, or rrf (reciprocal rank
fusion, Cormack et al. 2009, k=60); the span is the best dense segment.

Every hit points at the sentence of its span that best matches the query (`Hit.sentence`: the one
holding most of the query's rarer stemmed words, rarity counted over the sentences of all the hits'
spans; the span's first where none shares a word with the query): its snippet is centred on it,
and its page and section are that sentence's (documents/locations.py).
"""
from __future__ import annotations

import re

import numpy as np

from .errors import InputError
from .index import IndexStore
from .lexical import TermCounts, tokenize
from .ranking import RRF_K, reciprocal_rank_fusion
from .reasoning.bm25_selector import STEMMED
from .reasoning.sentences import split_sentences
from .types import Hit


Ranking = list[tuple[str, float, tuple[int, int] | None]]  # (doc_id, score, best span if known), best first
# `config` below is a config.Config, not imported: config.py reads this module's registries (MODES, RANKINGS, FUSIONS)


def search(store: IndexStore, query: str, query_vector: np.ndarray, config, k: int) -> list[Hit]:
    ranked = MODES[store.mode](store, query, query_vector, config, k)
    return _hits(store, query, [(doc_id, score, span or store.best_span(doc_id, query_vector))
                                for doc_id, score, span in ranked], config.search.snippet_chars)


def rerank(store: IndexStore, hits: list[Hit], ranked, snippet_chars: int, query: str = "") -> list[Hit]:
    """`hits` re-ordered by their best segment in `ranked` (spans best first with a score, e.g. a
    re-ranker's output over the hits' segments), that segment becoming the hit's span and its score
    the hit's; hits with no segment in `ranked` follow in their order."""
    best: dict[str, tuple[float, tuple[int, int]]] = {}
    for span, score in ranked:
        best.setdefault(span.doc_id, (float(score), (span.start, span.end)))
    kept = sorted((h for h in hits if h.doc_id in best), key=lambda h: -best[h.doc_id][0])
    return (_hits(store, query, [(h.doc_id, *best[h.doc_id]) for h in kept], snippet_chars)
            + [h for h in hits if h.doc_id not in best])


def _search_documents(store: IndexStore, query: str, vector: np.ndarray, config, k: int) -> Ranking:
    return _rank_by_documents(store, vector, k)


def _search_segments(store: IndexStore, query: str, vector: np.ndarray, config, k: int) -> Ranking:
    return _rank_by_segments(store, vector, k, max(config.search.candidates, k))


def _search_hybrid(store: IndexStore, query: str, vector: np.ndarray, config, k: int) -> Ranking:
    pool = max(config.search.candidates, k)
    if "documents" in config.search.fusion and not store.has_document_vectors:
        raise InputError("this index holds no document vectors (it was built without 'documents' in "
                         "search.fusion): rebuild it with that setting, or fuse only segments and bm25")
    rankings = [RANKINGS[name](store, query, vector, pool, config) for name in config.search.fusion]
    return FUSIONS[config.search.fusion_method](rankings)[:k]


def fusion(config) -> dict:
    """How hybrid search fuses its rankings (recorded in the index manifest)."""
    if config.search.fusion_method in ("convex", "minmax"):
        normalise = "theoretical_min_0" if config.search.fusion_method == "convex" else "min_max"
        return {"method": "convex", "normalise": normalise, "rankings": list(config.search.fusion)}
    return {"method": "reciprocal_rank_fusion", "k": RRF_K, "rankings": list(config.search.fusion)}


def fuse(rankings: list[Ranking]) -> Ranking:
    """Reciprocal rank fusion; a document's span comes from the first ranking that has it."""
    scores = reciprocal_rank_fusion([doc_id for doc_id, _, _ in ranking] for ranking in rankings)
    spans: dict[str, tuple[int, int]] = {}
    for doc_id, _, span in (entry for ranking in rankings for entry in ranking):
        if span is not None:
            spans.setdefault(doc_id, span)
    return [(d, s, spans.get(d)) for d, s in sorted(scores.items(), key=lambda item: -item[1])]


def fuse_scores(rankings: list[Ranking], floor: bool = True) -> Ranking:
    """Mean of normalised scores (a document missing from a ranking scores 0 there).

    Each ranking is scaled to [0, 1] between a low point and its top score. With `floor` the low
    point is the scores' theoretical minimum 0 (BM25 and these cosines are non-negative; an actual
    negative score lowers it), Bruch et al. 2023's "TMM"; otherwise it is the lowest score seen
    (min-max), which stretches a flat ranking so its noise can outvote a clear winner elsewhere
    (docs/results.md, "Chunked vs whole-document")."""
    scores: dict[str, float] = {}
    spans: dict[str, tuple[int, int]] = {}
    for ranking in rankings:
        if not ranking:
            continue
        values = [score for _, score, _ in ranking]
        low = min(0.0, min(values)) if floor else min(values)
        spread = (max(values) - low) or 1.0
        for doc_id, score, span in ranking:
            scores[doc_id] = scores.get(doc_id, 0.0) + (score - low) / spread / len(rankings)
            if span is not None:
                spans.setdefault(doc_id, span)
    return [(d, s, spans.get(d)) for d, s in sorted(scores.items(), key=lambda item: -item[1])]


def _rank_by_segments(store: IndexStore, query: np.ndarray, k: int, candidates: int) -> Ranking:
    """Max over segments: each document scores its best segment, which becomes its span."""
    return [(doc_id, score, (start, end)) for score, doc_id, start, end in store.best_segment_per_document(query, k, candidates)]


def _rank_by_bm25(store: IndexStore, query: str, candidates: int, config) -> Ranking:
    weights = {"name": config.search.name_weight, "heading": config.search.heading_weight}
    best: dict[str, tuple[float, tuple[int, int]]] = {}
    for score, doc_id, start, end in store.lexical_hits(query, candidates, weights):
        best.setdefault(doc_id, (score, (start, end)))
    return [(doc_id, score, span) for doc_id, (score, span) in best.items()]


def _rank_by_documents(store: IndexStore, query: np.ndarray, k: int) -> Ranking:
    return [(doc_id, score, None) for doc_id, score in store.document_hits(query, k)]


# index.mode → how it ranks documents; search.fusion → the rankings hybrid may fuse (each k documents
# best first); search.fusion_method → how hybrid fuses them. config.py validates against these names.
MODES = {"document": _search_documents, "chunks": _search_segments, "late_chunks": _search_segments,
         "hybrid": _search_hybrid}
RANKINGS = {"documents": lambda store, query, vector, k, config: _rank_by_documents(store, vector, k),
            "segments": lambda store, query, vector, k, config: _rank_by_segments(store, vector, k, k),
            "bm25": lambda store, query, vector, k, config: _rank_by_bm25(store, query, k, config)}
FUSIONS = {"convex": lambda rankings: fuse_scores(rankings, floor=True),
           "minmax": lambda rankings: fuse_scores(rankings, floor=False),
           "rrf": fuse}


def _hits(store: IndexStore, query: str, ranked: list[tuple[str, float, tuple[int, int]]],
          snippet_chars: int) -> list[Hit]:
    """Hits for (doc_id, score, span), each with the sentence of its span that best matches the
    query and a snippet centred on it."""
    spans = [(doc_id, score, start, end, *store.span_text(doc_id, start, end)) for doc_id, score, (start, end) in ranked]
    sentences = [split_sentences(text) or [(0, len(text))] for *_, text in spans]
    flat = [text[a:b] for (*_, text), pieces in zip(spans, sentences) for a, b in pieces]
    scores = _coverage(query, flat)
    hits, at = [], 0
    for (doc_id, score, start, end, path, text), pieces in zip(spans, sentences):
        a, b = pieces[int(np.argmax(scores[at:at + len(pieces)]))]  # the first of equals: no shared word → the first
        at += len(pieces)
        hits.append(Hit(doc_id=doc_id, path=path, score=score, start=start, end=end,
                        snippet=snippet(text, a, b, snippet_chars), sentence=(start + a, start + b)))
    return hits


def _coverage(query: str, sentences: list[str]) -> np.ndarray:
    """Each sentence's sum of the idf (over these sentences) of the query's stemmed words it holds,
    each word once: the sentence holding most of the query's rarer words wins, whatever its length
    (BM25's term frequency let a short sentence repeating one word beat the one that answers)."""
    scores = np.zeros(len(sentences))
    if not sentences:
        return scores
    counts = TermCounts.build(sentences, STEMMED)
    for term in set(tokenize([query], STEMMED)[0]):
        rows, _ = counts.rows_of(term)
        scores[rows] += np.log(1 + (len(sentences) - len(rows) + 0.5) / (len(rows) + 0.5))
    return scores


def snippet(text: str, a: int, b: int, chars: int) -> str:
    """text on one line, at most `chars` characters, centred on text[a:b] (a sentence): whole where
    it fits, with the words around it, "…" where text goes on."""
    def squash(piece: str) -> str:
        return re.sub(r"\s+", " ", piece).strip()

    middle, before, after = squash(text[a:b]), squash(text[:a]), squash(text[b:])
    if len(middle) >= chars:
        lead = "…" if before else ""
        return lead + middle[: chars - 1 - len(lead)].rsplit(" ", 1)[0] + "…"
    room = chars - len(middle) - 2  # two spaces joining the three parts
    left = min(len(before), max(room // 2, room - len(after)))
    right = room - left
    head = before[len(before) - left:] if left < len(before) else before
    if left < len(before):
        head = "…" + head.split(" ", 1)[-1] if " " in head else "…"
    tail = after[:right] if right < len(after) else after
    if right < len(after):
        tail = (tail.rsplit(" ", 1)[0] if " " in tail else "") + "…"
    return " ".join(part for part in (head, middle, tail) if part)
