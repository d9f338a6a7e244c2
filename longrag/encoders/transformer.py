"""The encoder: a transformers model plus the pooling of its sentence-transformers folder.

We run the transformer ourselves (not `SentenceTransformer.encode`) because long-document methods
need token ids, token vectors and position tricks that the high-level API hides.
Queries always go through the unmodified model: encoding short queries with a position-extended
model ruins retrieval.
"""
from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..memory import small_kernel_cache

small_kernel_cache()  # before torch runs anything: oneDNN reads it once
import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

from ..config import EncoderConfig
from ..devices import check_device
from ..errors import ConfigError, InputError, ModelNotFoundError
from ..types import TokenizedText, balanced_windows
from .interface import Encoder
from .long_model import build_long_model
from .weights import resolve_encoder
from .onnx_runtime import check_onnx, onnx_available, onnx_model
from .choices import POSITION_METHODS, WINDOW_METHODS
from .tuned import tuning_info

TOKENIZE_CHARS = 1 << 20  # characters tokenized per call


def text_slices(text: str, size: int) -> list[tuple[int, int]]:
    """[start, end) slices of about `size` characters, each but the first starting with a space or
    line break (a word-initial token then carries it as it does in one call); a hard cut only where
    a slice holds no whitespace at all."""
    slices, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind(" ", start + 1, end), text.rfind("\n", start + 1, end))
            end = cut if cut > start else end
        slices.append((start, end))
        start = end
    return slices


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class TransformerEncoder:
    """A BERT-style (or any AutoModel) sentence encoder with mean or CLS pooling."""

    def __init__(self, settings: EncoderConfig):
        self.settings = settings
        path = resolve_encoder(settings.model)
        self.path = path
        self.name = settings.model
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.is_fast:
            raise ModelNotFoundError(f"encoder {settings.model!r} needs a fast tokenizer (character offsets)")
        self.model = AutoModel.from_pretrained(path).eval().to(settings.device)
        self.dtype = resolve_dtype(settings.dtype, settings.device)
        self.runtime = resolve_runtime(settings.runtime, self.dtype, settings.device)
        # bfloat16: inputs of the original window run on torch through a bfloat16 copy (every op in bfloat16,
        # faster than autocast, vectors at cosine >= 0.9998 to float32: docs/results.md, "Encoder runtimes");
        # the float32 model stays for ONNX export, extended positions and tuning, which run under autocast
        on_torch = "torch" in self.runtime.values()
        self._bfloat16 = copy.deepcopy(self.model).to(torch.bfloat16) if self.dtype == "bfloat16" and on_torch else None
        if "onnx" in self.runtime.values():
            check_onnx()  # a missing runtime is a config error now, not at the first query
        self._onnx = None
        self.pooling = _read_pooling(path)
        prompts = _read_prompts(path)
        self.query_prefix = settings.query_prefix if settings.query_prefix is not None else prompts.get("query", "")
        self.document_prefix = (
            settings.document_prefix if settings.document_prefix is not None else prompts.get("document", prompts.get("passage", ""))
        )
        max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        # RoBERTa-style models reserve padding_idx + 1 positions
        reserved = (self.model.config.pad_token_id or 0) + 1 if self.model.config.model_type in ("xlm-roberta", "roberta") else 0
        self.max_positions = max_positions - reserved
        self.head_ids, self.tail_ids = _special_tokens(self.tokenizer)
        self.n_special = len(self.head_ids) + len(self.tail_ids)
        self.window = self.max_positions - self.n_special
        self.full_dim = int(self.model.config.hidden_size)
        if settings.matryoshka_dim is not None and settings.matryoshka_dim > self.full_dim:
            raise ConfigError(
                f"encoder.matryoshka_dim={settings.matryoshka_dim} is larger than the model's {self.full_dim} dims"
            )
        self.dim = settings.matryoshka_dim or self.full_dim
        # token ids put before every document input (e.g. E5's `passage: `)
        self.document_prefix_ids: list[int] = (
            self.tokenizer(self.document_prefix, add_special_tokens=False)["input_ids"] if self.document_prefix else []
        )
        if self.window - len(self.document_prefix_ids) < 8:
            raise ConfigError("encoder.document_prefix leaves no room in the encoder window")
        self.long_model = None
        if settings.document_method not in WINDOW_METHODS or settings.temperature != 1.0:
            self.long_model = build_long_model(self.model, settings, self.max_positions)

    # -- runtimes -------------------------------------------------------------------------------
    @property
    def query_runner(self):
        return self._runner("queries")

    @property
    def segment_runner(self):
        return self._runner("segments")

    def _runner(self, kind: str):
        """The model on torch (its bfloat16 copy when `encoder.dtype` is bfloat16), or its ONNX Runtime
        copy (exported or opened on first use: an indexing run that encodes segments on torch never needs it)."""
        if self.runtime[kind] == "torch":
            return self.model if self._bfloat16 is None else self._bfloat16
        if self._onnx is None:  # threads racing here export into the same cache folder, safely (atomic_directory)
            self._onnx = onnx_model(self.model, self.settings.model)
        return self._onnx

    def __getstate__(self) -> dict:
        """Pickled (a Ray actor's copy) without the ONNX Runtime session, which reopens on first use."""
        return {**self.__dict__, "_onnx": None}

    # -- tokens ---------------------------------------------------------------------------------
    def tokenize(self, text: str) -> TokenizedText:
        """Token ids and character offsets, tokenized in slices of TOKENIZE_CHARS cut at whitespace:
        one call on a whole 50 MB text holds gigabytes of token objects. The ids are the same as one
        call's; a SentencePiece tokenizer starts the offset of a slice's first word one character
        later (at its first letter, not the space before it)."""
        ids, offsets = [np.zeros(0, np.int64)], [np.zeros((0, 2), np.int64)]
        for start, end in text_slices(text, TOKENIZE_CHARS):
            enc = self.tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            ids.append(np.asarray(enc["input_ids"], dtype=np.int64))
            offsets.append(np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2) + start)
        return TokenizedText(np.concatenate(ids), np.concatenate(offsets))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @property
    def head_length(self) -> int:
        """Special tokens before content in every input (e.g. [CLS])."""
        return len(self.head_ids)

    @property
    def segment_window(self) -> int:
        """Content tokens a document segment may hold once the document prefix is added."""
        return self.window - len(self.document_prefix_ids)

    # -- vectors --------------------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode short queries with the unmodified model; longer ones are rejected, not cut."""
        ids = []
        for text in texts:
            tokens = self.tokenizer(self.query_prefix + text, add_special_tokens=False, verbose=False)["input_ids"]
            if len(tokens) > self.window:
                raise InputError(f"query has {len(tokens)} tokens; the encoder reads at most {self.window}")
            ids.append(np.asarray(tokens, dtype=np.int64))
        return self.encode_inputs(ids, self.query_runner)

    def encode_ids(self, batch: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Encode document segments given as token ids (each ≤ segment_window tokens)."""
        prefix = self.document_prefix_ids
        ids = [np.concatenate([np.asarray(prefix, dtype=np.int64), np.asarray(x, dtype=np.int64)]) for x in batch]
        too_long = [len(x) for x in ids if len(x) > self.window]
        if too_long:
            raise ValueError(f"segment of {max(too_long)} tokens exceeds the encoder window {self.window}")
        return self.encode_inputs(ids, self.segment_runner, progress)

    def encode_document(self, ids: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One vector for a whole document, by `encoder.document_method`."""
        method = self.settings.document_method
        if method == "truncate":
            return self.encode_ids([ids[: self.segment_window]], progress)[0]
        if method == "windows":
            windows = [ids[a:b] for a, b in balanced_windows(len(ids), self.segment_window)] or [ids]
            return _normalize(self.encode_ids(windows, progress).mean(axis=0))
        # extended positions: windows of the extended length, averaged (one window up to target_length)
        if len(ids) <= self.segment_window and self._short_inputs_unchanged:
            return self.encode_ids([ids], progress)[0]  # the original model itself, not a copy that equals it
        limit = self.long_window
        prefix = np.asarray(self.document_prefix_ids, dtype=np.int64)
        windows = [np.concatenate([prefix, ids[a:b]]) for a, b in balanced_windows(len(ids), limit - len(prefix))] or [prefix]
        vectors = self.encode_inputs(windows, self.long_model, progress)
        return _normalize(vectors.mean(axis=0))

    @property
    def _short_inputs_unchanged(self) -> bool:
        """Whether the long model reads inputs within the original window exactly as the original
        model does (kept position rows, τ(n) = 1 for short n). Such inputs then run through the
        original model itself: a deep copy of the same weights may take other kernel paths
        (alignment-dependent on some CPUs) and round differently."""
        s = self.settings
        return s.document_method in POSITION_METHODS and s.keep_short_positions and s.temperature in (1.0, "log")

    @property
    def long_window(self) -> int:
        target = self.settings.target_length or self.max_positions
        return target - self.n_special

    def truncated_tokens(self, n_tokens: int) -> int:
        """Tokens of an n-token document that its document vector does not read."""
        if self.settings.document_method == "truncate":
            return max(0, n_tokens - self.segment_window)
        return 0

    def encode_inputs(self, ids: Sequence[np.ndarray], model, progress=None) -> np.ndarray:
        """Pooled, normalised vectors (Matryoshka-cut) of whole inputs through `model`: each id array
        holds an input's content, prefix included; special tokens are added here."""
        vectors = self._forward_all(ids, model, progress)
        vectors = vectors[:, : self.dim] if self.dim < self.full_dim else vectors
        return _normalize(vectors)

    def _forward_all(self, ids: Sequence[np.ndarray], model, progress=None) -> np.ndarray:
        """Length-bucketed batches of at most `batch_tokens` padded tokens → raw pooled vectors."""
        out = np.zeros((len(ids), self.full_dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        budget = self.settings.batch_tokens
        start = 0
        while start < len(order):
            longest = len(ids[order[start]]) + self.n_special
            size = max(1, budget // longest)
            chunk = order[start : start + size]
            out[chunk] = self._forward([ids[i] for i in chunk], model)
            if progress:
                progress(sum(len(ids[i]) for i in chunk))
            start += size
        return out

    @torch.inference_mode()
    def _forward(self, batch: Sequence[np.ndarray], model) -> np.ndarray:
        states, mask = self.token_states_batch(batch, model)
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            m = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp(min=1)
        return pooled.float().cpu().numpy()

    @torch.inference_mode()
    def token_states_batch(self, batch: Sequence[np.ndarray], model=None):
        """Last hidden states (with special tokens) and attention mask for a batch of id arrays."""
        model = model or self.model
        seqs = [self.head_ids + [int(t) for t in x] + self.tail_ids for x in batch]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        device = self.settings.device
        kwargs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if "token_type_ids" in self.tokenizer.model_input_names:
            kwargs["token_type_ids"] = torch.zeros_like(kwargs["input_ids"])
        with contextlib.nullcontext() if model is self._bfloat16 else self.autocast():
            states = model(**kwargs).last_hidden_state
        return states.float(), kwargs["attention_mask"]

    def autocast(self):
        """bfloat16 matmuls (weights stay float32; norms, softmax and pooling in float32) when
        `encoder.dtype` is bfloat16, else nothing."""
        if self.dtype != "bfloat16":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.settings.device).type, dtype=torch.bfloat16)

    def describe(self) -> dict:
        """Everything that changes vectors: recorded in the index manifest, compared on load."""
        s = self.settings
        return {
            "model": s.model,
            "path_name": self.path.name,
            "dim": self.dim,
            "full_dim": self.full_dim,
            "pooling": self.pooling,
            "window": self.window,
            "document_method": s.document_method,
            "target_length": s.target_length,
            "keep_short_positions": s.keep_short_positions,
            "selfextend_window": s.selfextend_window,
            "selfextend_group": s.selfextend_group,
            "late_chunk_overlap": s.late_chunk_overlap,
            "temperature": s.temperature,
            "matryoshka_dim": s.matryoshka_dim,
            # None for float32, so indexes written before this key existed still match
            "dtype": None if self.dtype == "float32" else self.dtype,
            "runtime": self.runtime,  # recorded, not compared: it changes speed, not vectors (index/manifest.py)
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "tuned_positions": _tuned_positions(self.path),
        }


def _tuned_positions(path: Path) -> dict | None:
    """Base model and length of a folder written by `longrag tune-positions` (None otherwise)."""
    info = tuning_info(path)
    return None if info is None else {k: info[k] for k in ("base", "base_fingerprint", "length", "created_utc")}


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after content (e.g. [CLS] … [SEP], <s> … </s>)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    raise ModelNotFoundError("cannot tell the tokenizer's special tokens apart from content")


def _read_pooling(path: Path) -> str:
    modules = path / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text()):
            if module["type"].endswith("Pooling"):
                cfg = json.loads((path / module["path"] / "config.json").read_text())
                if cfg.get("pooling_mode_cls_token"):
                    return "cls"
                if cfg.get("pooling_mode_mean_tokens", True):
                    return "mean"
                raise ModelNotFoundError(f"unsupported pooling in {path}: {cfg}")
    return "mean"


def _read_prompts(path: Path) -> dict:
    cfg = path / "config_sentence_transformers.json"
    if cfg.exists():
        return json.loads(cfg.read_text()).get("prompts", {}) or {}
    return {}


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether `device` computes bfloat16 matmuls in hardware (CPU: AMX tiles or AVX512-BF16)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind != "cpu":
        return False
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # older torch: read the CPU flags
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """`encoder.dtype` as run: auto → bfloat16 where it is native on the device, else float32."""
    if dtype == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return dtype


def resolve_runtime(runtime: str, dtype: str, device: str = "cpu") -> dict[str, str]:
    """`encoder.runtime` as run, for queries and for segment batches. auto: on the CPU with ONNX
    Runtime installed, queries run there in float32 (one short input: torch's per-call overhead is
    most of its time, bfloat16 autocast adds more, and the vectors agree to cosine 0.99999) and
    segment batches on torch in `dtype` (matrix-bound: torch was as fast or faster); torch otherwise
    (docs/results.md, "Encoder runtimes")."""
    if runtime == "auto":
        onnx = torch.device(device).type == "cpu" and onnx_available()
        return {"queries": "onnx" if onnx else "torch", "segments": "torch"}
    return {"queries": runtime, "segments": runtime}


def token_counter(settings: EncoderConfig) -> Callable[[str], int]:
    """Count a text's tokens with the encoder's tokenizer, without loading the model."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(settings.model))
    return lambda text: len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def load_encoder(settings: EncoderConfig) -> TransformerEncoder:
    check_device(settings.device, "encoder.device")
    return TransformerEncoder(settings)
