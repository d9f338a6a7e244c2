"""Indexing: files → documents → segments → vectors → a new index generation.

Unchanged documents (same sha256) carry their stored vectors over; the rest are encoded.
"""
from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from . import retrieval
from .config import Config
from .documents import discover, load_file, segment_document
from .documents.loaders import SUPPORTED_SUFFIXES, UnreadableFile
from .encoders import Encoder
from .encoders.late_chunking import late_chunk_vectors
from .errors import InputError
from .index import IndexStore, IndexWriter
from .index.manifest import FORMAT_VERSION, check_compatible
from .index.layout import is_index
from .index.vectors import check_factory
from .types import Document, Skipped


@dataclass
class IndexReport:
    """What an indexing run did; printed as the run's summary."""

    index_dir: str
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    segments: int = 0
    tokens: int = 0
    encoded_tokens: int = 0
    windowed: int = 0  # documents longer than one encoder window, read as several windows
    truncated: list[tuple[str, int]] = field(default_factory=list)  # (doc_id, tokens cut)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # settings that could not be applied as given
    seconds: float = 0.0


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("longrag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy", "llama-cpp-python"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def find_files(paths: Sequence[str | Path], exclude: Path,
               follow_links: bool = False) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Supported files under `paths` as (file, root) pairs, leaving out `exclude` (the index itself);
    other files are listed as skipped."""
    files, skipped = discover(paths, follow_links)
    files = [(path, root) for path, root in files if not Path(path).resolve().is_relative_to(exclude.resolve())]
    if not files:
        raise InputError(
            f"no supported files under {', '.join(map(str, paths))} (supported: {', '.join(SUPPORTED_SUFFIXES)})"
            + (f"; skipped {len(skipped)} other files" if skipped else ""))
    return files, skipped


def read_documents(files: Sequence[tuple[Path, Path]], skipped: list[Skipped], progress: bool) -> list[Document]:
    """Each file as a Document; what cannot be read is added to `skipped`, never fatal — unless
    nothing can be read."""
    documents, seen = [], set()
    for path, root in tqdm(files, desc="reading", unit="file", disable=not progress, leave=False):
        try:
            doc = load_file(path, root)
        except UnreadableFile as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        if doc.doc_id in seen:
            skipped.append(Skipped(str(path), f"duplicate document id {doc.doc_id!r} (same relative path)"))
            continue
        seen.add(doc.doc_id)
        documents.append(doc)
    if not documents:
        raise InputError(f"none of the {len(files)} files could be read; nothing was changed: "
                         + "; ".join(f"{s.path}: {s.reason}" for s in skipped[-3:]))
    return documents


def previous_generation(target: Path, config: Config, encoder: Encoder, rebuild: bool) -> IndexStore | None:
    """The live generation whose vectors this run may reuse (None on a first run or --rebuild);
    an index built with other vector settings is refused."""
    if rebuild or not is_index(target):
        return None
    previous = IndexStore(target)
    check_compatible(target, previous.manifest, config.to_dict(), encoder.describe())
    return previous


class Indexer:
    """Writes one new generation of an index from documents (call with the writer lock held)."""

    def __init__(self, config: Config, encoder: Encoder):
        check_factory(config.index.factory, encoder.dim)
        self.config, self.encoder = config, encoder
        self.segment_tokens = min(config.segmenter.max_tokens, encoder.segment_window)

    def run(self, documents: Sequence[Document], target: Path, previous: IndexStore | None, progress: bool,
            skipped: Sequence[Skipped] = ()) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(index_dir=str(target), skipped=list(skipped))
        if self.segment_tokens < self.config.segmenter.max_tokens:
            report.notes.append(f"segments hold at most {self.segment_tokens} tokens, not segmenter.max_tokens="
                                f"{self.config.segmenter.max_tokens}: that is what the encoder reads in one pass")
        old_ids = set(previous.documents()) if previous else set()
        writer = IndexWriter(target)
        try:
            self._encode_into(writer, documents, previous, report, progress)
            report.removed = len(old_ids - {d.doc_id for d in documents})
            report.seconds = time.perf_counter() - started
            writer.commit(self._manifest(report), self.encoder.dim, self.config.index.factory,
                          bm25=self.config.index.mode == "hybrid")
        except BaseException:
            writer.abort()
            raise
        return report

    def _encode_into(self, writer: IndexWriter, documents: Sequence[Document], previous: IndexStore | None,
                     report: IndexReport, progress: bool) -> None:
        old = previous.documents() if previous else {}
        todo = [d for d in documents if old.get(d.doc_id, {}).get("sha256") != d.sha256]
        tokens = {d.doc_id: self.encoder.tokenize(d.text) for d in todo}
        bar = tqdm(total=sum(len(t) for t in tokens.values()), desc="encoding", unit="tok", unit_scale=True,
                   disable=not progress or not todo)
        for doc in documents:
            if doc.doc_id in tokens:
                report.added += doc.doc_id not in old
                report.updated += doc.doc_id in old
                row, segments, vectors, doc_vector = self._encode_document(doc, tokens.pop(doc.doc_id), report, bar)
            else:
                row = previous.document_row(doc.doc_id)
                segments, vectors, doc_vector = previous.stored_vectors(doc.doc_id)
                report.unchanged += 1
            writer.add(row, segments, vectors, doc_vector)
            report.tokens += row["n_tokens"]
            report.segments += len(segments)
        bar.close()
        report.documents = len(documents)

    def _encode_document(self, doc: Document, tokens, report: IndexReport, bar):
        encoder, cfg = self.encoder, self.config
        cut = max(0, len(tokens) - cfg.segmenter.max_document_tokens)
        if cut:
            tokens = type(tokens)(tokens.ids[: -cut], tokens.offsets[: -cut])
        parts = segment_document(doc, tokens, self.segment_tokens)
        spans = [(a, b) for _, a, b in parts]
        if cfg.index.mode == "late_chunks":
            segment_vectors = late_chunk_vectors(encoder, tokens.ids, spans, overlap=cfg.encoder.late_chunk_overlap)
        else:
            segment_vectors = encoder.encode_ids([tokens.ids[a:b] for a, b in spans])
        bar.update(len(tokens))
        doc_vector = None
        if cfg.index.mode == "document" or cfg.index.mode == "hybrid" and "documents" in cfg.search.fusion:
            doc_vector = encoder.encode_document(tokens.ids)
            cut += encoder.truncated_tokens(len(tokens))
        report.encoded_tokens += len(tokens)
        report.windowed += len(tokens) > encoder.segment_window
        if cut:
            report.truncated.append((doc.doc_id, cut))
        row = {"doc_id": doc.doc_id, "path": doc.path, "sha256": doc.sha256, "n_chars": len(doc.text),
               "n_tokens": len(tokens) + cut, "truncated_tokens": cut, "metadata": doc.metadata, "text": doc.text}
        segments = [{"start": s.start, "end": s.end, "n_tokens": s.n_tokens} for s, _, _ in parts]
        return row, segments, segment_vectors, doc_vector

    def _manifest(self, report: IndexReport) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "encoder": self.encoder.describe(),
            "config": self.config.to_dict(),
            "segment_tokens": self.segment_tokens,
            "fusion": retrieval.fusion(self.config) if self.config.index.mode == "hybrid" else None,
            "counts": {"documents": report.documents, "segments": report.segments, "tokens": report.tokens,
                       "windowed_documents": report.windowed},
            "truncation": {"documents": len(report.truncated), "tokens": sum(n for _, n in report.truncated),
                           "detail": report.truncated[:100]},
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
            "notes": report.notes,
            "last_run": {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                         "removed": report.removed, "seconds": round(report.seconds, 2)},
            "versions": library_versions(),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        }
