"""Typed settings, one section per pipeline stage, read from YAML or a dict.

Every key is checked: an unknown key or a bad value raises ConfigError naming `section.key`.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

from .encoders.choices import DOCUMENT_METHODS, DTYPES as ENCODER_DTYPES, RUNTIMES as ENCODER_RUNTIMES, WINDOW_METHODS
from .documents.pdf import OCR_MODES
from .budget import check_budget
from .errors import ConfigError
from .generation.backends import check_settings as check_generator
from .index.vectors import BACKENDS as VECTOR_BACKENDS
from .reasoning import CERTAINTIES, FIRST_STAGES, READ_ORDERS, SELECTORS
from .retrieval import FUSIONS, MODES, RANKINGS

# The names a key may take come from the registry that acts on them; these lists only read them.
# encoder.document_method: truncate | windows, then pi/gp/rp (learned absolute positions, encoders/positions.py)
# and ntk/dynamic/selfextend (rotary positions, encoders/rope_extension.py)
INDEX_MODES = tuple(MODES)  # retrieval.MODES
FUSION_RANKINGS = tuple(RANKINGS)  # what hybrid search may fuse: retrieval.RANKINGS
FUSION_METHODS = tuple(FUSIONS)  # retrieval.FUSIONS


@dataclass(frozen=True)
class EncoderConfig:
    model: str = "all-MiniLM-L6-v2"
    # How one vector is made for a document longer than the encoder window (document/hybrid modes):
    # truncate | windows (mean of window vectors, "PCW") | pi | gp | rp (extended absolute positions)
    # | ntk | dynamic | selfextend (extended rotary positions, for RoPE encoders).
    document_method: str = "windows"
    target_length: int | None = None  # extended window for the position methods and late chunking
    keep_short_positions: bool = True  # inputs within the original window use the original position rows
    selfextend_window: int | None = None  # SelfExtend neighbour window W (default: half the original window)
    selfextend_group: int | None = None  # SelfExtend group size G (default: from target_length)
    late_chunk_overlap: int = 64  # tokens shared by consecutive late-chunking windows
    temperature: Union[float, str] = 1.0  # attention temperature τ, or "log" = max(1, ln n / ln L)
    matryoshka_dim: int | None = None  # keep the first k dims, renormalised
    query_prefix: str | None = None  # None: taken from the model's sentence-transformers prompts
    document_prefix: str | None = None
    batch_tokens: int = 4096  # padded tokens per forward pass (smaller ran faster: activations stay in cache)
    # float32 | bfloat16 (a bfloat16 copy of the model; fast on CPUs with AMX / AVX512-BF16) | auto (bfloat16
    # where the CPU or GPU computes it natively, else float32). auto is the default: faster indexing on AMX
    # with identical nDCG@10 on SQuALITY and QMSum (docs/results.md, "Encoder speed", "Encoder runtimes")
    dtype: str = "auto"
    # torch | onnx (ONNX Runtime runs the unmodified model: same vectors, a third of torch's time for a query on
    # the CPU) | auto (ONNX Runtime for queries, torch for segment batches, where float32 runs on the CPU; torch
    # otherwise: docs/results.md, "Encoder runtimes"). Extended positions and late chunking always run on torch.
    runtime: str = "auto"
    device: str = "cpu"


@dataclass(frozen=True)
class SegmenterConfig:
    max_tokens: int = 256  # segments are balanced: ceil(n / max_tokens) near-equal parts
    max_document_tokens: int = 2_000_000  # longer documents are cut and the cut is reported
    headers: bool = False  # encode and BM25-count each segment after its document's name and section (documents/headers.py)


@dataclass(frozen=True)
class IndexConfig:
    # hybrid (chunk vectors + BM25, fused) measured best on QMSum, SQuALITY and passkey: docs/results.md
    mode: str = "hybrid"
    backend: str = "faiss"  # the vector index library: a name in index/vectors.py's BACKENDS
    factory: str = "auto"  # what the backend builds (faiss: a factory string), or auto (sized from the corpus)
    root: str = "indexes"
    # PDF pages without a text layer (scans): auto = read them by OCR (Tesseract) | off = leave them out, listed |
    # force = OCR every page, ignoring any text layer (a bad one). documents/pdf.py's OCR_MODES
    ocr: str = "auto"


@dataclass(frozen=True)
class SearchConfig:
    k: int = 10
    candidates: int = 200  # segment hits fetched before grouping them by document
    snippet_chars: int = 240
    # hybrid mode: the rankings fused (documents = document vectors, segments = segment max-sim,
    # bm25 = BM25 over segments)
    fusion: tuple[str, ...] = ("segments", "bm25")
    # rrf: reciprocal rank fusion (ranks only); convex: mean of each ranking's scores scaled from 0
    # to its top score, so a large score gap (an exact rare name in BM25) counts (Bruch et al. 2023);
    # minmax: the same scaled from its lowest score
    fusion_method: str = "convex"  # ties minmax on real sets, beats it on 8k-32k documents; both beat rrf: docs/results.md
    # the bm25 ranking's fields beside a segment's text (lexical.py): name = its document's file name and title,
    # heading = the section headings over it; each weighs against the text's 1, 0 leaves it out. Measured on
    # questions that name their licence and on QMSum, SQuALITY, CUAD (docs/results.md, "Questions that name
    # their document"): the name lifts hit@1 56% → 72%, the heading field lifted nothing there
    name_weight: float = 2.5
    heading_weight: float = 0.0


@dataclass(frozen=True)
class GeneratorConfig:
    """The causal LM that reads evidence and answers (`longrag ask`)."""

    # packaged name, .gguf file, local transformers folder or cached hub id. qwen2.5-0.5b answered 5 of 10
    # contract questions against SmolLM2-135M's 3 (docs/results.md, "Ten contract questions")
    model: str = "qwen2.5-0.5b"
    # auto | llama.cpp (GGUF models on the CPU, quantised as shipped) | transformers (any model, CUDA, every
    # extension) | openai (any OpenAI-compatible chat server: generation/openai_server.py; model = the server's
    # model name); auto = llama.cpp where it applies and is installed (generation/backends.py), never openai
    backend: str = "auto"
    threads: int | None = None  # llama.cpp threads (default: the physical cores this process may use)
    extension: str = "none"  # RoPE context extension: none | linear | dynamic | yarn | selfextend
    factor: float = 1.0  # linear / dynamic / yarn scale
    selfextend_window: int = 512  # SelfExtend neighbour window W (not the context length: that is the model's)
    selfextend_group: int = 8  # SelfExtend group size G
    dtype: str = "auto"  # auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16
    device: str = "cpu"
    max_new_tokens: int = 128
    # backend openai: the server's OpenAI API root, e.g. http://127.0.0.1:8080/v1
    base_url: str | None = None
    api_key_env: str | None = None  # NAME of the environment variable holding the key (None: no key); never the key
    context_window: int | None = None  # the server's context in tokens (None: asked from the server, else an error)
    timeout: float = 120.0  # seconds a request may wait for the server
    max_retries: int = 2  # retries (with backoff) on connection failures, HTTP 429 and 5xx only


@dataclass(frozen=True)
class AskConfig:
    """How `ask` picks evidence inside the retrieved documents (see longrag/reasoning)."""

    # SELECTORS; hybrid: best measured evidence recall per second; sentences wins on contracts, loses on meetings (docs/results.md)
    selector: str = "hybrid"
    # evidence tokens (generator tokens) handed to the generator; 1024 halves the time, but left out the clause
    # that answers a contract question (docs/results.md, "Ten contract questions")
    budget: int = 2048
    documents: int = 3  # top retrieved documents whose segments are candidates
    candidates: int = 16  # xl3m / rerank: first-stage shortlist M read by the generator
    first_stage: str = "hybrid"  # xl3m / rerank / alr2 cheap first stage: embedding | bm25 | hybrid (RRF of both)
    certainty: str = "log_likelihood"  # xl3m: log_likelihood | neg_entropy
    quote_threshold: float = 90.0  # alr2: rapidfuzz partial ratio (0-100) a quote needs to count as verified
    min_relevance: float = 0.35  # best question–segment cosine below this → "not found" (docs/results.md, "Ask": measured gate)
    pool: int = 12  # sentences: the best segments whose sentences are ranked (and quotes chosen from)
    quotes: int = 3  # sentences shown first, verbatim: what the documents say
    # the model that reads yes/no questions from the quotes and checks other answers against them (a
    # generator name as in generator.model, run like the generator); null: the generator itself
    checker: str | None = "qwen2.5-1.5b"
    # yes/no: the checker's and the generator's log p(Yes) − log p(No) summed, less `lean` (that sum averaged over the
    # dev questions for the default pair); |margin| below `unsure` → withheld as unsure
    lean: float = 0.5
    unsure: float = 0.5
    # fact answers: log p(Yes) − log p(No) of "does the span's sentence support it?" below → withheld (tuned on the dev half)
    support_threshold: float = 1.25
    # other questions, before any answer is written: the checker's log p(Yes) − log p(No) of "do the quotes
    # answer the question?" below this → not found (null: not asked)
    answerable: float | None = 0.5
    # fact questions: quotes (the generator points at words of the quotes and their neighbouring sentences) |
    # quotes_first (and reads the whole evidence when that answer does not align) | evidence (all of it at once)
    read: str = "quotes"
    aligned: float = 0.75  # share of a fact answer's new words found in order in one sentence; below → withheld


@dataclass(frozen=True)
class Config:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    ask: AskConfig = field(default_factory=AskConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    if get_origin(annotation) is tuple:  # tuple[str, ...]: a YAML list of strings
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"config key {key!r} must be a list of names, got {value!r}")
    options = get_args(annotation) if get_origin(annotation) in (Union, type(int | None)) else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option in (int, str, bool) and type(value) is option:
            return value
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    raise ConfigError(f"config key {key!r} must be {names}, got {value!r}")


# keys an earlier longrag read, and their names now
RENAMED = {"generator.window": "generator.selfextend_window", "generator.group": "generator.selfextend_group"}


def _section(cls: type, key: str, values: Mapping[str, Any]) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"config section {key!r} must be a mapping, got {values!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    out = {}
    for name, value in values.items():
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f"; did you mean {key}.{close[0]}?" if close else f"; valid keys: {', '.join(known)}"
            if f"{key}.{name}" in RENAMED:
                hint = f"; it is now {RENAMED[f'{key}.{name}']}"
            raise ConfigError(f"unknown config key {key}.{name}{hint}")
        out[name] = _check_type(f"{key}.{name}", value, hints[name])
    return cls(**out)


def _validate(config: Config) -> Config:
    enc, seg, idx, search = config.encoder, config.segmenter, config.index, config.search

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(enc.document_method in DOCUMENT_METHODS,
         f"encoder.document_method must be one of {', '.join(DOCUMENT_METHODS)}, got {enc.document_method!r}")
    need(idx.mode in INDEX_MODES, f"index.mode must be one of {', '.join(INDEX_MODES)}, got {idx.mode!r}")
    need(idx.backend in VECTOR_BACKENDS,  # read when checked: a backend registered later counts
         f"index.backend must be one of {', '.join(VECTOR_BACKENDS)}, got {idx.backend!r}")
    need(idx.ocr in OCR_MODES, f"index.ocr must be one of {', '.join(OCR_MODES)}, got {idx.ocr!r}")
    need(isinstance(enc.temperature, float) and enc.temperature > 0 or enc.temperature == "log",
         f"encoder.temperature must be a positive number or 'log', got {enc.temperature!r}")
    need(enc.dtype in ENCODER_DTYPES, f"encoder.dtype must be one of {', '.join(ENCODER_DTYPES)}, got {enc.dtype!r}")
    need(enc.runtime in ENCODER_RUNTIMES,
         f"encoder.runtime must be one of {', '.join(ENCODER_RUNTIMES)}, got {enc.runtime!r}")
    need(enc.runtime != "onnx" or enc.device == "cpu" and enc.dtype != "bfloat16",
         "encoder.runtime 'onnx' runs float32 on the CPU: set encoder.device: cpu and encoder.dtype: float32, "
         "or encoder.runtime: auto")
    need(enc.batch_tokens >= 512, f"encoder.batch_tokens must be >= 512, got {enc.batch_tokens}")
    need(enc.matryoshka_dim is None or enc.matryoshka_dim > 0,
         f"encoder.matryoshka_dim must be a positive integer, got {enc.matryoshka_dim}")
    need(enc.target_length is None or enc.target_length > 0,
         f"encoder.target_length must be a positive integer, got {enc.target_length}")
    need(enc.document_method in WINDOW_METHODS or enc.target_length is not None,
         f"encoder.document_method={enc.document_method!r} extends positions: set encoder.target_length "
         "(e.g. 4096)")
    need(enc.late_chunk_overlap >= 0, f"encoder.late_chunk_overlap must be >= 0, got {enc.late_chunk_overlap}")
    need(seg.max_tokens >= 8, f"segmenter.max_tokens must be >= 8, got {seg.max_tokens}")
    need(seg.max_document_tokens >= seg.max_tokens,
         "segmenter.max_document_tokens must be >= segmenter.max_tokens")
    need(not (seg.headers and idx.mode == "late_chunks"),
         "segmenter.headers puts a header before each segment; late_chunks reads the whole document at once: "
         "set one of them off")
    need(search.k > 0, f"search.k must be positive, got {search.k}")
    need(search.candidates > 0, f"search.candidates must be positive, got {search.candidates}")
    for key in ("name_weight", "heading_weight"):
        need(getattr(search, key) >= 0, f"search.{key} must be >= 0 (0 leaves the field out), got {getattr(search, key)}")
    need(search.fusion_method in FUSION_METHODS,
         f"search.fusion_method must be one of {', '.join(FUSION_METHODS)}, got {search.fusion_method!r}")
    need(bool(search.fusion) and set(search.fusion) <= set(FUSION_RANKINGS) and len(set(search.fusion)) == len(search.fusion),
         f"search.fusion must be a list of distinct names from {', '.join(FUSION_RANKINGS)}, got {list(search.fusion)}")
    check_generator(config.generator)
    _validate_ask(config)
    return config


def config_from_dict(data: Mapping[str, Any] | None) -> Config:
    data = dict(data or {})
    sections = {f.name: f.type for f in fields(Config)}
    parts = {}
    for key, values in data.items():
        if key not in sections:
            close = difflib.get_close_matches(str(key), list(sections), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; valid sections: {', '.join(sections)}"
            raise ConfigError(f"unknown config section {key!r}{hint}")
        cls = get_type_hints(Config)[key]
        parts[key] = _section(cls, key, values or {})
    return _validate(Config(**parts))


def load_config(source: str | Path | Mapping[str, Any] | Config | None = None) -> Config:
    """Load settings from a YAML file, a dict, or return defaults for None."""
    if isinstance(source, Config):
        return _validate(source)
    if source is None or isinstance(source, Mapping):
        return config_from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return config_from_dict(data)


def with_overrides(config: Config, **sections: Mapping[str, Any]) -> Config:
    """Return a copy with some keys of some sections replaced (validated like a file)."""
    merged = config.to_dict()
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return config_from_dict(merged)


def _validate_ask(config: Config) -> None:
    """Checks of the ask section (the generator section is checked by its backends: check_generator)."""
    ask = config.ask

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(ask.selector in SELECTORS, f"ask.selector must be one of {', '.join(SELECTORS)}, got {ask.selector!r}")
    check_budget(ask.budget)
    need(ask.documents >= 1, f"ask.documents must be >= 1, got {ask.documents}")
    need(ask.candidates >= 1, f"ask.candidates must be >= 1, got {ask.candidates}")
    need(ask.first_stage in FIRST_STAGES,
         f"ask.first_stage must be one of {', '.join(FIRST_STAGES)}, got {ask.first_stage!r}")
    need(ask.certainty in CERTAINTIES, f"ask.certainty must be one of {', '.join(CERTAINTIES)}, got {ask.certainty!r}")
    need(0.0 < ask.quote_threshold <= 100.0, f"ask.quote_threshold must be in (0, 100], got {ask.quote_threshold}")
    need(-1.0 <= ask.min_relevance <= 1.0, f"ask.min_relevance must be a cosine in [-1, 1], got {ask.min_relevance}")
    need(ask.pool >= 1, f"ask.pool must be >= 1 segments, got {ask.pool}")
    need(1 <= ask.quotes <= 10, f"ask.quotes must be 1 to 10 sentences, got {ask.quotes}")
    need(ask.read in READ_ORDERS, f"ask.read must be one of {', '.join(READ_ORDERS)}, got {ask.read!r}")
    need(0.0 < ask.aligned <= 1.0, f"ask.aligned must be a share in (0, 1], got {ask.aligned}")
    need(ask.unsure >= 0.0, f"ask.unsure must be >= 0 (a log-probability margin), got {ask.unsure}")


__all__ = ["Config", "EncoderConfig", "SegmenterConfig", "IndexConfig", "SearchConfig", "GeneratorConfig", "AskConfig",
           "load_config", "config_from_dict", "with_overrides", "replace"]
