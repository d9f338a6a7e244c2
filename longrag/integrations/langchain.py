"""LangChain adapters: a retriever over a longrag index and an Embeddings view of its encoder.

>>> from longrag import Pipeline
>>> from longrag.integrations.langchain import LongragRetriever
>>> retriever = LongragRetriever(pipeline=Pipeline.load("indexes/contracts"), k=3)
>>> docs = retriever.invoke("what happens to my patent licence if I sue")
>>> docs[0].metadata  # {'doc_id': ..., 'path': ..., 'score': ..., 'start': ..., 'end': ..., 'section': (...)}

Each Document's `page_content` is the whole matched span, `text[start:end]` of the indexed
document (the Hit's snippet is a shortened preview and is not used).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"longrag.integrations.langchain needs langchain-core ({exc}); pip install 'longrag[langchain]'"
    ) from exc

from ..config import Config
from ..encoders import Encoder
from ..pipeline import Pipeline
from ..types import Hit

__all__ = ["LongragRetriever", "LongragEmbeddings", "hit_to_document"]


def hit_to_document(pipeline: Pipeline, hit: Hit) -> Document:
    """A LangChain Document for a Hit: the full span as content, the citation as metadata."""
    _, text = pipeline.store.span_text(hit.doc_id, hit.start, hit.end)
    return Document(
        page_content=text,
        metadata={"doc_id": hit.doc_id, "path": hit.path, "score": hit.score, "start": hit.start, "end": hit.end,
                  **{k: v for k, v in (("page", hit.page), ("pages", hit.pages), ("section", hit.section),
                                       ("sentence", hit.sentence)) if v}},
    )


class LongragRetriever(BaseRetriever):
    """Ranked documents of a longrag index, each as its best-matching span.

    `k` documents per query (override per call: ``retriever.invoke(query, k=2)``). Metadata of
    every Document: `doc_id`, `path`, `score` (cosine of the best segment, or fused score in
    hybrid mode), `start`, `end` (character offsets into the document's extracted text),
    `sentence` ([start, end) of the span's sentence that best matches the query), and where the
    document records them that sentence's `page`, `pages` (PDF) and `section` (the heading path).
    Safe to call from several threads; `ainvoke` runs the search in the default executor.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Pipeline
    """An indexed Pipeline (`Pipeline.load(dir)`, or one that has just run `index`)."""
    k: int = 4
    """Number of documents to return."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        hits = self.pipeline.search(query, k=k or self.k)
        return [hit_to_document(self.pipeline, hit) for hit in hits]


class LongragEmbeddings(Embeddings):
    """The pipeline's encoder as LangChain Embeddings (unit-length vectors, lists of floats).

    `embed_documents` reads long texts whole: a text longer than one encoder window is encoded
    by the encoder's document method (by default the mean of balanced windows) instead of being
    cut. `embed_query` uses the unmodified model with the query prefix, as longrag search does.
    """

    def __init__(self, pipeline: Pipeline):
        """Wrap the encoder of `pipeline` (loaded on first use)."""
        self.pipeline = pipeline

    @classmethod
    def from_config(cls, config: str | Path | Mapping[str, Any] | Config | None = None,
                    encoder: Encoder | None = None) -> "LongragEmbeddings":
        """From a config file, dict or Config (None: the defaults, i.e. the packaged MiniLM)."""
        return cls(Pipeline.from_config(config, encoder=encoder))

    @property
    def encoder(self) -> Encoder:
        """The longrag encoder doing the work."""
        return self.pipeline.encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text; texts over the encoder window go through `encode_document`."""
        encoder = self.encoder
        out: list[list[float] | None] = [None] * len(texts)
        short: list[int] = []
        ids = [encoder.tokenize(text).ids for text in texts]
        for i, tokens in enumerate(ids):
            if len(tokens) > encoder.segment_window:
                out[i] = [float(x) for x in encoder.encode_document(tokens)]
            else:
                short.append(i)
        if short:
            for i, vector in zip(short, encoder.encode_ids([ids[i] for i in short])):
                out[i] = [float(x) for x in vector]
        return out  # type: ignore[return-value]

    def embed_query(self, text: str) -> list[float]:
        """The query vector longrag searches with."""
        return [float(x) for x in self.encoder.encode_queries([text])[0]]
