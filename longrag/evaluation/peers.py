"""Peer pipeline run as its users run it: LangChain's recursive splitter + FAISS vector store.

Settings are those of LangChain's RAG tutorial (chunk_size=1000 characters, chunk_overlap=200),
with HuggingFaceEmbeddings on the same sentence-transformers model longrag uses. Documents are
ranked by their best chunk, as longrag's chunks mode does, so only the pipeline differs.
"""
from __future__ import annotations

import os
import time
import warnings

from ..errors import InputError
from ..encoders.weights import resolve_encoder
from .results import DEPTH, RunResult


def langchain_embeddings(model: str):
    """HuggingFaceEmbeddings on longrag's (packaged) encoder, as LangChain users run sentence-transformers."""
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as exc:
        raise InputError(f"the langchain peer needs the extra: pip install 'longrag[langchain]' ({exc.name})") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return HuggingFaceEmbeddings(model_name=str(resolve_encoder(model)), encode_kwargs={"normalize_embeddings": True})


def langchain_store(corpus: dict[str, str], embeddings):
    """The tutorial's FAISS store over doc_id → text: recursive 1000/200-character chunks, each with
    its `doc_id` and `start_index` (its character offset) in the metadata."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.vectorstores import FAISS
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    except ImportError as exc:
        raise InputError(f"the langchain peer needs the extra: pip install 'longrag[langchain]' ({exc.name})") from None
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    docs = splitter.split_documents([Document(page_content=text, metadata={"doc_id": doc_id})
                                     for doc_id, text in corpus.items()])
    return FAISS.from_documents(docs, embeddings)


def run_langchain(dataset, model: str) -> RunResult:
    started = time.perf_counter()
    store = langchain_store(dataset.corpus, langchain_embeddings(model))
    result = RunResult(run={}, encode_seconds=time.perf_counter() - started,
                       index_bytes=store.index.ntotal * store.index.d * 4)
    pool = min(store.index.ntotal, DEPTH * 20)
    for qid, query in dataset.queries.items():
        started = time.perf_counter()
        found = store.similarity_search_with_score(query, k=pool)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        ranking: dict[str, float] = {}
        for doc, distance in found:  # L2 distance, best first
            ranking.setdefault(doc.metadata["doc_id"], -float(distance))
        result.run[qid] = dict(list(ranking.items())[:DEPTH])
        starts = {}
        for doc, _ in found[:50]:
            start = doc.metadata["start_index"]
            starts.setdefault(doc.metadata["doc_id"], (start, start + len(doc.page_content)))
        result.spans[qid] = starts
    return result
