"""Pipeline: index(paths) · search(query) · load(index_dir) — the one object apps and the CLI use."""
from __future__ import annotations

import platform
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from . import retrieval
from .config import Config, load_config
from .documents import discover, load_file, segment_document
from .documents.loaders import SUPPORTED_SUFFIXES, UnreadableFile
from .encoders import Encoder, load_encoder
from .errors import EncoderMismatchError, InputError
from .index import IndexStore, IndexWriter, resolve_index_dir
from .index.layout import check_target, is_index, remove_debris, writer_lock
from .types import Document, Hit, Skipped

if TYPE_CHECKING:
    from .reasoning import Answer

FORMAT_VERSION = 1


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
    seconds: float = 0.0


def library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("longrag", "torch", "transformers", "sentence-transformers", "faiss-cpu", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


class Pipeline:
    """Index folders of long documents and search them.

    >>> pipe = Pipeline.from_config("configs/default.yaml")
    >>> pipe.index(["examples/contracts"])          # writes indexes/contracts
    >>> pipe.search("patent licence ends if I sue", k=3)
    """

    def __init__(self, config: Config, encoder: Encoder | None = None, index_dir: str | Path | None = None):
        self.config = config
        self._encoder = encoder
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self._store: IndexStore | None = None
        self._lock = threading.Lock()  # the encoder and the store are loaded once, whatever thread asks first
        self._generator = None  # loaded on the first ask()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any] | Config | None = None, **kwargs) -> "Pipeline":
        return cls(load_config(source), **kwargs)

    @classmethod
    def load(cls, index_dir: str | Path, config: str | Path | Mapping | Config | None = None,
             encoder: Encoder | None = None) -> "Pipeline":
        """Open an existing index with the settings it was built with.

        A `config` may be given to change search settings; if it names a different encoder than
        the index was built with, EncoderMismatchError says so (vectors would not be comparable).
        """
        store = IndexStore(Path(index_dir))
        built = load_config(store.manifest["config"])
        if config is not None:
            wanted = load_config(config)
            _check_same_vectors(built, wanted, store.path)
            built = Config(encoder=built.encoder, segmenter=built.segmenter, index=built.index, search=wanted.search,
                           generator=wanted.generator, ask=wanted.ask)
        pipe = cls(built, encoder=encoder, index_dir=store.path)
        pipe._store = store
        return pipe

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = load_encoder(self.config.encoder)
        return self._encoder

    @property
    def store(self) -> IndexStore:
        """The index's live generation, opened whole; reopened when an update has published a newer
        one (a caller keeps the object it got for the whole of one search or answer)."""
        store = self._store
        if store is None or not store.is_current():
            if self.index_dir is None:
                raise InputError("this pipeline has no index yet: call index(paths) or Pipeline.load(dir)")
            with self._lock:
                if self._store is None or not self._store.is_current():
                    fresh = IndexStore(self.index_dir)
                    if self._store is not None:
                        _check_same_vectors(self.config, load_config(fresh.manifest["config"]), fresh.path)
                    self._store = fresh
                store = self._store
        return store

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Ranked documents for a query, each with its best-matching span."""
        if not query or not query.strip():
            raise InputError("empty query")
        k = k or self.config.search.k
        vector = self.encoder.encode_queries([query])[0]
        return retrieval.search(self.store, query, vector, self.config, k)

    # -- ask ------------------------------------------------------------------------------------
    @property
    def generator(self):
        """The configured generator (`generator` section), loaded on first use."""
        if self._generator is None:
            with self._lock:
                if self._generator is None:
                    from .reasoning.ask import load_generator

                    self._generator = load_generator(self.config.generator)
        return self._generator

    def ask(self, question: str, selector: str | None = None, budget: int | None = None,
            stream: Callable[[str], None] | None = None) -> "Answer":
        """Answer a question from the indexed documents, citing the exact spans used.

        The top `ask.documents` documents are retrieved; `selector` (embedding | bm25 | hybrid | xl3m |
        alr2, default `ask.selector`) picks their segments that fit `budget` generator tokens
        (default `ask.budget`); the generator answers from them, streaming text to `stream`.
        Returns an `Answer`; its text is "not found in the indexed documents" when the evidence
        does not support an answer.
        """
        from .reasoning.ask import ask

        return ask(self, question, selector=selector, budget=budget, stream=stream)

    # -- indexing -------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | Path] | str | Path, index_dir: str | Path | None = None,
              rebuild: bool = False, progress: bool = True, wait: bool = False) -> IndexReport:
        """Index files and folders incrementally into `index_dir` (default `indexes/<first folder name>`).

        Unchanged files keep their vectors, changed files are re-encoded, files no longer present are
        dropped. The previous index stays usable until the new one is complete. `index_dir` must be
        an index, an empty folder or a new path (InputError otherwise: nothing is touched). Another
        process writing the same index → IndexBusyError, or wait for it with `wait`.
        """
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise InputError("no paths to index")
        files, skipped = discover(paths)
        if not files:
            raise InputError(
                f"no supported files under {', '.join(map(str, paths))} (supported: {', '.join(SUPPORTED_SUFFIXES)})"
                + (f"; skipped {len(skipped)} other files" if skipped else ""))
        target = Path(index_dir) if index_dir is not None else (
            self.index_dir or resolve_index_dir(_default_name(paths[0]), self.config.index.root))
        files = [(path, root) for path, root in files if not _inside(path, target)]
        with self._writing(target, wait):
            self._previous(target, rebuild)  # an encoder mismatch fails before any file is read
            documents = self._load(files, skipped, progress)
            if not documents:
                raise InputError(f"none of the {len(files)} files could be read; nothing was changed: "
                                 + "; ".join(f"{s.path}: {s.reason}" for s in skipped[-3:]))
            return self._write(documents, target, rebuild, progress, skipped)

    def index_documents(self, documents: Sequence[Document], index_dir: str | Path, rebuild: bool = False,
                        progress: bool = True, skipped: Sequence[Skipped] = (), wait: bool = False) -> IndexReport:
        """Index in-memory Documents (unique doc_ids); the index then holds exactly these documents."""
        target = Path(index_dir)
        with self._writing(target, wait):
            return self._write(documents, target, rebuild, progress, skipped)

    @staticmethod
    @contextmanager
    def _writing(target: Path, wait: bool):
        """Only an index, an empty folder or a new path may be written; one writer at a time."""
        check_target(target)
        with writer_lock(target, wait):
            remove_debris(target)
            yield

    def _write(self, documents: Sequence[Document], target: Path, rebuild: bool, progress: bool,
               skipped: Sequence[Skipped]) -> IndexReport:
        started = time.perf_counter()
        previous = self._previous(target, rebuild)
        report = IndexReport(index_dir=str(target), skipped=list(skipped))
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
        self.index_dir, self._store = target, None
        return report

    def _previous(self, target: Path, rebuild: bool) -> IndexStore | None:
        if rebuild or not is_index(target):
            return None
        previous = IndexStore(target)
        built = previous.manifest.get("encoder", {})
        mine = self.encoder.describe()
        changed = sorted(k for k in set(built) | set(mine) if built.get(k) != mine.get(k))
        if changed or previous.manifest["config"]["segmenter"] != self.config.to_dict()["segmenter"] \
                or previous.manifest["config"]["index"]["mode"] != self.config.index.mode:
            detail = ", ".join(f"{k}: {built.get(k)!r} → {mine.get(k)!r}" for k in changed) or "segmenter or index mode"
            raise EncoderMismatchError(
                f"index {target} was built with different encoder settings ({detail}); "
                "use --rebuild to re-encode everything, or --index NEW_NAME")
        return previous

    def _load(self, files, skipped: list[Skipped], progress: bool) -> list[Document]:
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
        return documents

    def _encode_into(self, writer: IndexWriter, documents: list[Document], previous: IndexStore | None,
                     report: IndexReport, progress: bool) -> None:
        old = previous.documents() if previous else {}
        todo = [d for d in documents if old.get(d.doc_id, {}).get("sha256") != d.sha256]
        tokens = {d.doc_id: self.encoder.tokenize(d.text) for d in todo}
        bar = tqdm(total=sum(len(t) for t in tokens.values()), desc="encoding", unit="tok", unit_scale=True,
                   disable=not progress or not todo)
        for doc in documents:
            if doc.doc_id not in tokens:
                row = previous.document_row(doc.doc_id)
                segments, vectors, doc_vector = previous.stored_vectors(doc.doc_id)
                writer.add(row, segments, vectors, doc_vector)
                report.unchanged += 1
                self._count(report, row["n_tokens"], len(segments))
                continue
            report.added += doc.doc_id not in old
            report.updated += doc.doc_id in old
            row, segments, vectors, doc_vector = self._encode_document(doc, tokens.pop(doc.doc_id), report, bar)
            writer.add(row, segments, vectors, doc_vector)
            self._count(report, row["n_tokens"], len(segments))
        bar.close()
        report.documents = len(documents)

    @staticmethod
    def _count(report: IndexReport, n_tokens: int, n_segments: int) -> None:
        report.tokens += n_tokens
        report.segments += n_segments

    def _encode_document(self, doc: Document, tokens, report: IndexReport, bar):
        encoder, cfg = self.encoder, self.config
        cut = max(0, len(tokens) - cfg.segmenter.max_document_tokens)
        if cut:
            tokens = type(tokens)(tokens.ids[: -cut], tokens.offsets[: -cut])
        size = min(cfg.segmenter.max_tokens, encoder.segment_window)
        parts = segment_document(doc, tokens, size)
        spans = [(a, b) for _, a, b in parts]
        if cfg.index.mode == "late_chunks":
            from .encoders.late_chunking import late_chunk_vectors

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
            "fusion": retrieval.fusion(self.config) if self.config.index.mode == "hybrid" else None,
            "counts": {"documents": report.documents, "segments": report.segments, "tokens": report.tokens,
                       "windowed_documents": report.windowed},
            "truncation": {"documents": len(report.truncated), "tokens": sum(n for _, n in report.truncated),
                           "detail": report.truncated[:100]},
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
            "last_run": {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
                         "removed": report.removed, "seconds": round(report.seconds, 2)},
            "versions": library_versions(),
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        }


def _check_same_vectors(built: Config, wanted: Config, path: Path) -> None:
    if built.encoder != wanted.encoder or built.segmenter != wanted.segmenter or built.index.mode != wanted.index.mode:
        raise EncoderMismatchError(
            f"index {path} was built with encoder {built.encoder.model!r} ({built.encoder.document_method}, "
            f"mode {built.index.mode}); the configuration asks for {wanted.encoder.model!r} "
            f"({wanted.encoder.document_method}, mode {wanted.index.mode}); re-index with this config or drop --config")


def _inside(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _default_name(path: str | Path) -> str:
    path = Path(path).expanduser().resolve()
    return (path.stem if path.is_file() else path.name) or "default"
