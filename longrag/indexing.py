"""Indexing: files → documents → segments → vectors → a new index generation.

Unchanged documents (same sha256) stay in their shards; new and changed ones are encoded into a
new shard, and the replaced or removed ones are tombstoned.
"""
from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import retrieval
from .config import Config
from .documents import discover, load_file, segment_document
from .documents.loaders import SUPPORTED_SUFFIXES, ReadOptions, UnreadableFile, content_sha256
from .documents.headers import header_text, headed_ids
from .documents.locations import stale_documents
from .encoders import Encoder
from .encoders.late_chunking import late_chunk_vectors
from .errors import IndexNotFoundError, InputError
from .index import IndexStore, IndexWriter
from .index.layout import check_target, is_index, live_generation, writing
from .index.manifest import INDEX_KEYS, RUNTIME_KEYS, Manifest, check_compatible, utc_now
from .index.store import OldFormatError, read_manifest
from .index.vectors import BACKENDS, backend, check_vectors
from .index.writer import convert_format_1
from .lexical import FIELD_FILES, LexicalSettings
from .memory import give_back_freed_memory
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
    backends = dict.fromkeys(backend(name).package for name in BACKENDS)  # each vector backend names its package
    for name in ("longrag", "torch", "transformers", "sentence-transformers", *backends, "numpy", "onnxruntime",
                 "llama-cpp-python"):
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


@dataclass(frozen=True)
class Source:
    """A document to index: its id and content hash now, its text only when it is encoded, so a run
    over a large folder holds one encoding batch of texts rather than all of them."""

    doc_id: str
    sha256: str
    path: str
    read: Callable[[], Document]  # raises UnreadableFile

    @classmethod
    def of(cls, document: Document) -> "Source":
        return cls(document.doc_id, document.sha256, document.path, lambda: document)


def scan_files(files: Sequence[tuple[Path, Path]], skipped: list[Skipped], progress: bool,
               ocr: str = "auto") -> list[Source]:
    """Each file as a Source (id from its path, hash of its bytes; text extracted later, by OCR
    where `ocr` says: index.ocr); files that cannot be read are added to `skipped`, never fatal —
    unless none can be read."""
    sources, seen = [], set()
    for path, root in tqdm(files, desc="scanning", unit="file", disable=not progress, leave=False):
        doc_id = path.relative_to(root).as_posix()
        try:
            sha = content_sha256(path)
        except UnreadableFile as exc:
            skipped.append(Skipped(str(path), str(exc)))
            continue
        if doc_id in seen:
            skipped.append(Skipped(str(path), f"duplicate document id {doc_id!r} (same relative path)"))
            continue
        seen.add(doc_id)
        options = ReadOptions(ocr, progress, doc_id)
        sources.append(Source(doc_id, sha, str(path), lambda path=path, root=root, o=options: load_file(path, root, o)))
    if not sources:
        raise nothing_readable(len(files), skipped)
    return sources


def nothing_readable(n_files: int, skipped: Sequence[Skipped]) -> InputError:
    return InputError(f"none of the {n_files} files could be read; nothing was changed: "
                      + "; ".join(f"{s.path}: {s.reason}" for s in skipped[-3:]))


def previous_generation(target: Path, config: Config, encoder: Encoder, rebuild: bool) -> IndexStore | None:
    """The live generation whose vectors this run may reuse (None on a first run or --rebuild);
    an index built with other vector settings is refused."""
    if rebuild or not is_index(target):
        return None
    try:
        previous = IndexStore(target)
    except OldFormatError:
        generation = live_generation(target)
        manifest = read_manifest(generation, target)
        check_compatible(target, manifest, config.to_dict(), encoder.describe())
        convert_format_1(target, generation, manifest)
        previous = IndexStore(target)
    check_compatible(target, previous.manifest, config.to_dict(), encoder.describe())
    return previous


@dataclass
class Encoded:
    """What indexing computes for one document: its stored row, segments and vectors."""

    row: dict  # the shard's document row (shard.DOCUMENT_KEYS)
    segments: list[dict]  # start, end, n_tokens
    vectors: np.ndarray  # (segments, dim)
    document_vector: np.ndarray | None
    encoded_tokens: int
    windowed: bool  # longer than one encoder window, read as several windows
    cut: int  # tokens not indexed


GROUP_BATCHES = 4  # encoder batches' worth of documents encoded together


class DocumentEncoder:
    """Documents → `Encoded`, the one definition of the per-document work, run in this process or
    by Ray actors (distributed.py).

    Documents are tokenized one at a time and their segments encoded in groups of about
    GROUP_BATCHES × `encoder.batch_tokens` tokens across documents (short documents would otherwise
    make batches of one; several batches' worth lets the encoder fill each batch with segments of
    one length), so memory follows the group, not the corpus."""

    def __init__(self, config: Config, encoder: Encoder):
        self.config, self.encoder = config, encoder
        self.segment_tokens = min(config.segmenter.max_tokens, encoder.segment_window)

    def encode_all(self, documents: Iterable[Document]) -> Iterator[Encoded]:
        batch, tokens = [], 0
        for doc in documents:
            batch.append(self._prepare(doc))
            tokens += len(batch[-1][1])
            if tokens >= GROUP_BATCHES * self.config.encoder.batch_tokens:
                yield from self._encode(batch)
                batch, tokens = [], 0
        yield from self._encode(batch)

    def _prepare(self, doc: Document) -> tuple:
        """(document, tokens kept, segments with token spans, tokens cut)."""
        tokens = self.encoder.tokenize(doc.text)
        cut = max(0, len(tokens) - self.config.segmenter.max_document_tokens)
        if cut:
            tokens = type(tokens)(tokens.ids[: -cut], tokens.offsets[: -cut])
        return doc, tokens, segment_document(doc, tokens, self.segment_tokens), cut

    def _encode(self, batch: list[tuple]) -> Iterator[Encoded]:
        cfg, encoder = self.config, self.encoder
        if cfg.index.mode == "late_chunks":
            segment_vectors = [late_chunk_vectors(encoder, tokens.ids, [(a, b) for _, a, b in parts],
                                                  overlap=cfg.encoder.late_chunk_overlap) for _, tokens, parts, _ in batch]
        else:
            pieces = [piece for doc, tokens, parts, _ in batch
                      for piece in (headed_ids(encoder, doc, tokens, parts) if cfg.segmenter.headers
                                    else [tokens.ids[a:b] for _, a, b in parts])]
            vectors = encoder.encode_ids(pieces) if pieces else np.zeros((0, encoder.dim), np.float32)
            segment_vectors = np.split(vectors, np.cumsum([len(parts) for _, _, parts, _ in batch])[:-1])
        keep_document = cfg.index.mode == "document" or cfg.index.mode == "hybrid" and "documents" in cfg.search.fusion
        for (doc, tokens, parts, cut), vectors in zip(batch, segment_vectors):
            document_vector = None
            if keep_document:
                document_vector = encoder.encode_document(tokens.ids)
                cut += encoder.truncated_tokens(len(tokens))
            row = {"doc_id": doc.doc_id, "path": doc.path, "sha256": doc.sha256, "n_chars": len(doc.text),
                   "n_tokens": len(tokens) + cut, "truncated_tokens": cut, "metadata": doc.metadata, "text": doc.text}
            segments = [{"start": s.start, "end": s.end, "n_tokens": s.n_tokens} for s, _, _ in parts]
            if cfg.segmenter.headers:  # what BM25 counts ahead of each segment (index/shard.py)
                segments = [{**row, "header": header_text(doc, row["start"], row["end"])} for row in segments]
            yield Encoded(row, segments, vectors, document_vector, len(tokens), len(tokens) > encoder.segment_window, cut)
        give_back_freed_memory()  # this batch's activations: else the heap keeps them and RSS grows per batch


EncodeAll = Callable[[Iterable[Document]], Iterable[Encoded]]


class Indexer:
    """Writes one new generation of an index from documents (call with the writer lock held).
    `encode_all` runs the per-document work elsewhere (a Ray cluster); by default, here."""

    def __init__(self, config: Config, encoder: Encoder, encode_all: EncodeAll | None = None):
        check_vectors(config.index.backend, config.index.factory, encoder.dim)
        self.config, self.encoder = config, encoder
        self.segment_tokens = min(config.segmenter.max_tokens, encoder.segment_window)
        self.encode_all = encode_all or DocumentEncoder(config, encoder).encode_all

    def run(self, sources: Sequence[Source], target: Path, previous: IndexStore | None, progress: bool,
            skipped: Sequence[Skipped] = (), keep_missing: bool = False, optimize: bool = False) -> IndexReport:
        """Make the index hold the `sources` (and, with `keep_missing`, what it held besides);
        `optimize` merges all shards into one, dropping deleted documents for good. A source whose
        text cannot be read is skipped (and, like a file that is gone, leaves the index)."""
        started = time.perf_counter()
        report = IndexReport(index_dir=str(target), skipped=list(skipped))
        if self.segment_tokens < self.config.segmenter.max_tokens:
            report.notes.append(f"segments hold at most {self.segment_tokens} tokens, not segmenter.max_tokens="
                                f"{self.config.segmenter.max_tokens}: that is what the encoder reads in one pass")
        old = previous.documents() if previous else {}
        lexical = LexicalSettings(fields=tuple(FIELD_FILES)) if self.config.index.mode == "hybrid" else None
        writer = IndexWriter(target, previous, self.encoder.dim, self.config.index.backend, self.config.index.factory,
                             lexical)
        if writer.recount:
            report.notes.append("BM25 counted again with the name and heading fields (the index was written before "
                                "them); no text was encoded again for that")
        try:
            stale = set(stale_documents(previous)) if previous else set()  # indexed before pages and sections were
            todo = [s for s in sources if old.get(s.doc_id, {}).get("sha256") != s.sha256 or s.doc_id in stale]
            unreadable: set[str] = set()
            fresh = self._encode_into(writer, self._read(todo, report, unreadable), len(todo), report, progress)
            if unreadable and len(unreadable) == len(sources):
                raise nothing_readable(len(report.skipped), report.skipped)
            given = {s.doc_id for s in sources} - unreadable
            gone = [] if keep_missing else [doc_id for doc_id in old if doc_id not in given]
            for doc_id in gone + [d for d in fresh if d in old]:
                writer.delete(doc_id)
            report.unchanged = len(sources) - len(todo)
            report.added = sum(doc_id not in old for doc_id in fresh)
            report.updated = len(fresh) - report.added
            report.removed = len(gone)
            live = {doc_id: info for doc_id, info in old.items() if doc_id not in gone} | fresh
            report.tokens = sum(info["n_tokens"] for info in live.values())
            report.seconds = time.perf_counter() - started
            manifest = writer.commit(self._manifest(report, truncation(live)), optimize)
        except BaseException:
            writer.abort()
            raise
        report.documents, report.segments = manifest.counts["documents"], manifest.counts["segments"]
        return report

    @staticmethod
    def _read(sources: Sequence[Source], report: IndexReport, unreadable: set[str]) -> Iterator[Document]:
        """The sources' documents, read as the encoder asks for them; what fails is skipped and noted."""
        for source in sources:
            try:
                document = source.read()
                report.notes += [f"{source.doc_id}: {note}" for note in document.metadata.get("notes", ())]
                yield document
            except UnreadableFile as exc:
                report.skipped.append(Skipped(source.path, str(exc)))
                unreadable.add(source.doc_id)

    def _encode_into(self, writer: IndexWriter, documents: Iterable[Document], total: int,
                     report: IndexReport, progress: bool) -> dict[str, dict]:
        """Encode the documents into the writer; returns their rows by doc_id."""
        fresh = {}
        with tqdm(total=total, desc="encoding", unit="doc", disable=not progress or not total) as bar:
            for done in self.encode_all(documents):
                writer.add(done.row, done.segments, done.vectors, done.document_vector)
                fresh[done.row["doc_id"]] = {k: done.row[k] for k in ("n_tokens", "truncated_tokens")}
                report.encoded_tokens += done.encoded_tokens
                report.windowed += done.windowed
                if done.cut:
                    report.truncated.append((done.row["doc_id"], done.cut))
                bar.update(1)
        return fresh

    def _manifest(self, report: IndexReport, cut: dict) -> Manifest:
        """What this run records (the writer adds the shards, counts and sizes): the settings the
        index is read with, never the search, generator or ask sections."""
        settings = self.config.to_dict()
        return Manifest(
            encoder=self.encoder.describe(),
            encoder_settings={k: v for k, v in settings["encoder"].items() if k not in RUNTIME_KEYS},
            segmenter=settings["segmenter"],
            index={k: settings["index"][k] for k in INDEX_KEYS},
            counts={"tokens": report.tokens, "windowed_documents": report.windowed},
            created_utc=utc_now(),
            segment_tokens=self.segment_tokens,
            fusion=retrieval.fusion(self.config) if self.config.index.mode == "hybrid" else None,
            truncation=cut,
            skipped=[{"path": s.path, "reason": s.reason} for s in report.skipped],
            notes=report.notes,
            last_run=last_run(report),
            versions=library_versions(),
            machine={"platform": platform.platform(), "processor": platform.processor() or platform.machine()})


def truncation(documents: dict[str, dict]) -> dict:
    """What the index left unread, over all its documents ({doc_id: {truncated_tokens, ...}})."""
    cut = sorted((doc_id, info["truncated_tokens"]) for doc_id, info in documents.items() if info["truncated_tokens"])
    return {"documents": len(cut), "tokens": sum(n for _, n in cut), "detail": cut[:100]}


def last_run(report: IndexReport) -> dict:
    return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "removed": report.removed, "seconds": round(report.seconds, 2)}


def build(paths: Sequence[str | Path], target: Path, config: Config, encoder: Callable[[], Encoder], *,
          rebuild: bool = False, progress: bool = True, wait: bool = False, add: bool = False,
          follow_links: bool = False, distribute: Callable[[], EncodeAll] | None = None) -> IndexReport:
    """Index files and folders into `target` (see Pipeline.index). The target is checked before
    files are looked for (it may be the folder being indexed); `distribute` then gives the
    per-document work to others (a Ray cluster: distributed.py); `encoder` is called once the
    writer lock is held, and the settings and the old index are checked before any file is read."""
    check_target(target)
    files, skipped = find_files(paths, exclude=target, follow_links=follow_links)
    encode_all = distribute() if distribute is not None else None
    return _update(target, config, encoder, lambda: scan_files(files, skipped, progress, config.index.ocr), skipped,
                   rebuild, progress,
                   wait, add, encode_all)


def build_documents(documents: Sequence[Document], target: Path, config: Config, encoder: Callable[[], Encoder], *,
                    rebuild: bool = False, progress: bool = True, wait: bool = False, add: bool = False,
                    skipped: Sequence[Skipped] = ()) -> IndexReport:
    """Index in-memory Documents (unique doc_ids) into `target` (see Pipeline.index_documents)."""
    return _update(target, config, encoder, lambda: [Source.of(d) for d in documents], list(skipped), rebuild,
                   progress, wait, add)


def _update(target: Path, config: Config, encoder: Callable[[], Encoder], sources: Callable[[], list[Source]],
            skipped: list[Skipped], rebuild: bool, progress: bool, wait: bool, add: bool,
            encode_all: EncodeAll | None = None) -> IndexReport:
    with writing(target, wait):
        loaded = encoder()
        indexer = Indexer(config, loaded, encode_all)  # settings and the old index are checked before any file is read
        previous = previous_generation(target, config, loaded, rebuild)
        return indexer.run(sources(), target, previous, progress, skipped, keep_missing=add)


def rewrite(target: Path, remove: Sequence[str] = (), optimize: bool = False, wait: bool = False) -> IndexReport:
    """Remove documents (an id not in the index → InputError, nothing changed) and/or merge all
    shards into one (`optimize`), with the settings the index was built with: no encoder is needed."""
    if not is_index(target):
        raise IndexNotFoundError(f"no longrag index at {target}")
    with writing(target, wait):
        return _rewrite(target, IndexStore(target), remove, optimize)


def _rewrite(target: Path, previous: IndexStore, remove: Sequence[str], optimize: bool) -> IndexReport:
    started = time.perf_counter()
    unknown = [doc_id for doc_id in remove if doc_id not in previous]
    if unknown:
        raise InputError(f"not in index {target}: {', '.join(map(repr, unknown[:5]))}"
                         + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "") + "; nothing was changed "
                         "(document ids are paths relative to the indexed folder: see `longrag info`)")
    m = previous.manifest
    lexical = LexicalSettings(**m.lexical) if m.lexical else None
    writer = IndexWriter(target, previous, m.encoder["dim"], m.index["backend"], m.index["factory"], lexical)
    try:
        for doc_id in dict.fromkeys(remove):
            writer.delete(doc_id)
        removed = set(remove)
        live = {doc_id: info for doc_id, info in previous.documents().items() if doc_id not in removed}
        report = IndexReport(index_dir=str(target), unchanged=len(live), removed=len(removed),
                             tokens=sum(info["n_tokens"] for info in live.values()))
        report.seconds = time.perf_counter() - started
        manifest = writer.commit(replace(m, created_utc=utc_now(), counts={**m.counts, "tokens": report.tokens},
                                         truncation=truncation(live), last_run=last_run(report), skipped=[]), optimize)
    except BaseException:
        writer.abort()
        raise
    report.documents, report.segments = manifest.counts["documents"], manifest.counts["segments"]
    return report
