"""Pipeline: index(paths) · search(query) · ask(question) · load(index_dir) — the one object apps
and the CLI use; it wires the stages together and owns nothing else."""
from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from . import answering, searching
from .config import Config, load_config, with_overrides
from .distributed import connect, ray_encoding
from .encoders import Encoder, load_encoder
from .errors import ConfigError, InputError, LongragError
from .generation import GeneratorBackend, load_generator
from .generation.backends import checker_settings
from .generation.langchain_chat import as_generator
from .index import IndexStore, resolve_index_dir
from .index.layout import is_index
from .index.manifest import check_compatible
from .indexing import IndexReport, build, build_documents, rewrite
from .reasoning import Answer
from .types import Document, Hit, Skipped

def index_root(config: Config) -> str:
    """Where bare index names live: $LONGRAG_INDEXES, else `index.root`."""
    return os.environ.get("LONGRAG_INDEXES", config.index.root)


def default_index_dir(paths: Sequence[str | Path], config: Config) -> Path:
    """indexes/<name of the first folder (or file stem)>."""
    first = Path(paths[0]).expanduser().resolve()
    return resolve_index_dir((first.stem if first.is_file() else first.name) or "default", index_root(config))


class Pipeline:
    """Index folders of long documents, search them, and answer questions from them.

    >>> pipe = Pipeline.from_config("configs/default.yaml")
    >>> pipe.index(["examples/contracts"])          # writes indexes/contracts
    >>> pipe.search("patent licence ends if I sue", k=3)
    """

    def __init__(self, config: Config, encoder: Encoder | None = None, index_dir: str | Path | None = None,
                 generator: Any = None, context_window: int | None = None):
        """`generator`: a GeneratorBackend or any LangChain chat model (BaseChatModel) to answer with,
        in place of the configured one; `context_window` is the chat model's window in tokens."""
        self.config = config
        self._encoder = encoder
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self._store: IndexStore | None = None
        self._lock = threading.Lock()  # the encoder, store and generator are loaded once, whatever thread asks first
        self._generator: GeneratorBackend | None = as_generator(generator, context_window) if generator is not None else None
        self._checker: GeneratorBackend | None = None
        self._brought = generator is not None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any] | Config | None = None, **kwargs) -> "Pipeline":
        return cls(load_config(source), **kwargs)

    @classmethod
    def load(cls, index_dir: str | Path, config: str | Path | Mapping | Config | None = None,
             encoder: Encoder | None = None, generator: Any = None, context_window: int | None = None) -> "Pipeline":
        """Open an existing index: its encoder, segmenter and index settings are the ones it was built
        with (its manifest); search, generator and ask settings, and how the encoder runs (device,
        runtime, batch_tokens), are `config`'s (the defaults when None).

        A bare name is looked up under $LONGRAG_INDEXES (else `index.root`). A `config` that changes
        the vectors (another encoder, segmenter or index mode) raises IndexSettingsMismatchError.
        """
        wanted = load_config(config)
        path = Path(index_dir)
        store = IndexStore(path if is_index(path) else resolve_index_dir(index_dir, index_root(wanted)))
        if config is not None:
            check_compatible(store.path, store.manifest, wanted.to_dict())
        built = store.manifest
        settings = with_overrides(wanted, encoder=built.encoder_settings, segmenter=built.segmenter, index=built.index)
        pipe = cls(settings, encoder=encoder, index_dir=store.path, generator=generator, context_window=context_window)
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
                        check_compatible(fresh.path, fresh.manifest, self.config.to_dict())
                    self._store = fresh
                store = self._store
        return store

    @property
    def generator(self) -> GeneratorBackend:
        """The configured generator (`generator` section), loaded on first use."""
        if self._generator is None:
            with self._lock:
                if self._generator is None:
                    self._generator = _load_generator(self.config)
        return self._generator

    @property
    def checker(self) -> GeneratorBackend:
        """The model that reads yes/no questions and checks answers: `ask.checker`, run locally; the
        generator itself when that is null or names it, or when the generator is a model you brought
        or a server (each checks its own answers: generation/backends.checker_settings)."""
        settings = None if self._brought else checker_settings(self.config.generator, self.config.ask.checker)
        if settings is None:
            return self.generator
        if self._checker is None:
            with self._lock:
                if self._checker is None:
                    self._checker = _load_generator(replace(self.config, generator=settings))
        return self._checker

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, rerank: bool = False) -> list[Hit]:
        """Ranked documents for a query (k of them, default `search.k`), each with its best-matching span.

        `rerank`: the generator re-ranks the top `ask.candidates` segments of the k documents (the
        `rerank` selector); documents are re-ordered by their best segment, which becomes their span,
        and its log p(Yes), normalised over {Yes, No}, their score (the flow: searching.py)."""
        return searching.search(self.store, self.encoder, self.config, query, k, self.generator if rerank else None)

    # -- ask ------------------------------------------------------------------------------------
    def ask(self, question: str, selector: str | None = None, budget: int | None = None) -> Answer:
        """Answer a question from the indexed documents, citing the exact spans used.

        The top `ask.documents` documents are retrieved; `selector` (embedding | bm25 | hybrid | xl3m |
        alr2, sentences, default `ask.selector`) picks the evidence that fits `budget` generator tokens
        (default `ask.budget`). The quotes are its best `ask.quotes` sentences for the question. A
        yes/no question is read from the quotes (Yes or No by the models' likelihood of each); for any
        other the generator points at the words of the quotes that answer it, and the answer is that
        span of the document (`Answer.answer_span`, with page and section). A reading that aligns to
        no span, or that the checker does not take to answer the question, is withheld
        (`Answer.withheld` says why). Its text is "not found in the indexed documents" when the
        documents do not support an answer (`Answer.not_found` says why). The flow is in answering.py.
        """
        return answering.ask(self._stages(), question, selector, budget)

    def ask_events(self, question: str, selector: str | None = None,
                   budget: int | None = None) -> Iterator[tuple[str, Any]]:
        """`ask` stage by stage, for a reader who should see each part as soon as it is known:
        ("documents", hits), ("quotes", quotes), ("answer", Answer), ("done", Answer)."""
        return answering.ask_events(self._stages(), question, selector, budget)

    def _stages(self) -> answering.Stages:
        return answering.Stages(self.store, self.encoder, self.generator, lambda: self.checker, self.config)

    # -- indexing -------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | Path] | str | Path, index_dir: str | Path | None = None,
              rebuild: bool = False, progress: bool = True, wait: bool = False,
              follow_links: bool = False, add: bool = False, ray: str | None = None) -> IndexReport:
        """Index files and folders incrementally into `index_dir` (default `indexes/<first folder name>`).

        Unchanged files keep their vectors, changed files are re-encoded, files no longer present are
        dropped (kept with `add`: then only the given files are added or updated). Only what changed
        is written. The previous index stays usable until the new one is complete. `index_dir` must
        be an index, an empty folder or a new path (InputError otherwise: nothing is touched).
        Another process writing the same index → IndexBusyError, or wait for it with `wait`. Links
        to files outside the indexed folders are skipped (and listed) unless `follow_links`.
        `ray`: encode on a Ray cluster at this address ("auto", "ray://host:10001", or "local" to
        start one here); an unreachable address raises InputError before anything is written.
        """
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        if not paths:
            raise InputError("no paths to index")
        target = Path(index_dir) if index_dir is not None else (self.index_dir or default_index_dir(paths, self.config))

        def on_ray():
            connect(ray)
            return ray_encoding(self.config, self._encoder)  # actors load the model unless one was given

        report = build(paths, target, self.config, lambda: self.encoder, rebuild=rebuild, progress=progress, wait=wait,
                       add=add, follow_links=follow_links, distribute=on_ray if ray is not None else None)
        self.index_dir, self._store = target, None
        return report

    def index_documents(self, documents: Sequence[Document], index_dir: str | Path | None = None,
                        rebuild: bool = False, progress: bool = True, skipped: Sequence[Skipped] = (),
                        wait: bool = False, add: bool = False) -> IndexReport:
        """Index in-memory Documents (unique doc_ids); the index then holds exactly these documents
        (with `add`: these added or updated, the others kept)."""
        target = self._target(index_dir)
        report = build_documents(documents, target, self.config, lambda: self.encoder, rebuild=rebuild,
                                 progress=progress, wait=wait, add=add, skipped=skipped)
        self.index_dir, self._store = target, None
        return report

    def remove(self, doc_ids: Sequence[str], index_dir: str | Path | None = None, wait: bool = False) -> IndexReport:
        """Remove documents by id (an id not in the index → InputError, nothing changed); their
        rows are tombstoned until the next merge."""
        return self._rewrite(index_dir, wait, remove=list(doc_ids))

    def optimize(self, index_dir: str | Path | None = None, wait: bool = False) -> IndexReport:
        """Merge all shards into one, dropping removed documents for good (one vector search per query)."""
        return self._rewrite(index_dir, wait, optimize=True)

    def _rewrite(self, index_dir, wait: bool, **change) -> IndexReport:
        target = self._target(index_dir)
        report = rewrite(target, wait=wait, **change)
        self.index_dir, self._store = target, None
        return report

    def _target(self, index_dir: str | Path | None) -> Path:
        if index_dir is None and self.index_dir is None:
            raise InputError("no index given: pass index_dir, or open one with Pipeline.load(dir)")
        return Path(index_dir) if index_dir is not None else self.index_dir


def _load_generator(config: Config) -> GeneratorBackend:
    """The configured generator; any failure to load becomes one clear error."""
    settings = config.generator
    try:
        return load_generator(settings)
    except LongragError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ConfigError(f"generator {settings.model!r} could not be loaded: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


__all__ = ["Pipeline", "IndexReport", "index_root", "default_index_dir"]
