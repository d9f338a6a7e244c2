"""The llama.cpp backend: a GGUF model run by llama-cpp-python, quantised as shipped (no
dequantising), on the CPU's own SIMD kernels. RoPE extension: linear and YaRN (llama.cpp's own
rope scaling); dynamic NTK and SelfExtend are transformers-only."""
from __future__ import annotations

import ctypes
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import psutil

from ..errors import ConfigError, InputError, ModelNotFoundError
from ..files import cache_dir
from .base import REPEAT_TOKENS, Certainty, LocalChat, Message, TextPieces, looped, plain_render, window_error
from .weights import file_sha256, gguf_file, llama_cpp_type
from .settings import ContextExtension

INSTALL = ("pip install llama-cpp-python==0.3.36 (it compiles llama.cpp: a C/C++ compiler and cmake are needed; "
           "see README, Models), or set generator.backend: transformers")
EXTENSIONS = ("none", "linear", "yarn")


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(f"generator.backend 'llama.cpp' needs llama-cpp-python, which is not installed: {INSTALL}") from None
    return llama_cpp


class LlamaCppGenerator(LocalChat):
    """Greedy generation and scoring with llama.cpp; the same interface as TransformersGenerator."""

    backend = "llama.cpp"

    def __init__(self, llm, extension: ContextExtension, max_positions: int, name: str):
        self.llm = llm
        self.extension = extension
        self.max_positions = max_positions
        self.name = name
        llama_cpp = _llama_cpp()
        meta = llm.metadata
        vocab = llm._model.vocab
        self._end = {t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
        control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        self._specials = sorted({llm.detokenize([t], special=True).decode("utf-8", "replace")
                                 for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(vocab, t) & control})
        template = meta.get("tokenizer.chat_template")
        self._template = None
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            token = lambda key: llm.detokenize([int(meta[key])], special=True).decode() if key in meta else ""
            self._template = Jinja2ChatFormatter(template, eos_token=token("tokenizer.ggml.eos_token_id"),
                                                 bos_token=token("tokenizer.ggml.bos_token_id"),
                                                 add_generation_prompt=True)

    @classmethod
    def from_settings(cls, name: str, extension: ContextExtension = ContextExtension(),
                      threads: int | None = None) -> "LlamaCppGenerator":
        """Load a packaged generator name or a local .gguf file."""
        llama_cpp = _llama_cpp()
        if extension.method not in EXTENSIONS:
            raise ConfigError(f"generator.extension {extension.method!r} is not available with backend 'llama.cpp' "
                              f"(it offers {', '.join(EXTENSIONS)}): set generator.backend: transformers")
        path = gguf_file(name)
        if kind := llama_cpp_type(name):
            path = requantised(path, kind)
        settings = dict(model_path=str(path), n_batch=512, n_threads=threads or _cores(),
                        n_threads_batch=threads or _cores(), flash_attn=True, verbose=False)
        llm = llama_cpp.Llama(n_ctx=0, **settings)  # n_ctx 0: the model's trained length
        max_positions = llm.n_ctx()
        if extension.method != "none":
            scale = dict(rope_freq_scale=1.0 / extension.factor, yarn_orig_ctx=max_positions,
                         rope_scaling_type=llama_cpp.LLAMA_ROPE_SCALING_TYPE_LINEAR if extension.method == "linear"
                         else llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN)
            del llm
            llm = llama_cpp.Llama(n_ctx=int(max_positions * extension.factor), **settings, **scale)
        return cls(llm, extension, max_positions, name)

    @property
    def window(self) -> int:
        return self.llm.n_ctx()

    def _ids(self, text: str) -> list[int]:
        # prompts come from the chat template, which already writes the special tokens
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _decode(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def special_tokens(self) -> list[str]:
        return list(self._specials)

    def render(self, messages: Sequence[Message]) -> str:
        if self._template is None:
            return plain_render(messages)
        return self._template(messages=list(messages)).prompt

    def generate(self, prompt: str, max_new_tokens: int = 256, stream: Callable[[str], None] | None = None,
                 *, beyond_window: bool = False) -> str:
        ids = self._ids(prompt)
        if len(ids) > self.window - max_new_tokens:
            # llama.cpp cannot run past its allocated context, so beyond_window has nothing to measure here
            raise InputError(window_error(len(ids), self.window, self.extension, max_new_tokens))
        pieces = TextPieces(self._decode, stream, hold=REPEAT_TOKENS) if stream else None
        answer: list[int] = []
        # greedy; generate() reuses the KV cache of the longest prefix shared with the previous prompt
        for token in self.llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
            if token in self._end:
                break
            answer.append(token)
            if pieces:
                pieces.add([token])
            if looped(answer):
                answer = answer[: len(answer) - REPEAT_TOKENS]
                break
            if len(answer) >= max_new_tokens:
                break
        if pieces:
            pieces.finish(answer)
        return self._decode(answer)

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[Certainty]:
        """Certainty of each continuation given its prefix: the prefix is read once, then the
        continuation token by token (llama.cpp keeps logits of the last position only)."""
        out = []
        for prefix, continuation in pairs:
            head, tail = self._ids(prefix), self._ids(continuation)
            if not head or not tail:
                raise InputError("score() needs a non-empty prefix and continuation in every pair")
            if len(head) + len(tail) > self.window:
                raise InputError(f"pair has {len(head) + len(tail)} tokens; the generator's window is {self.window} "
                                 f"(method {self.extension.describe()})")
            self._read(head)
            logp, entropy = [], []
            for i, token in enumerate(tail):
                row = self._last_logits()
                row = row - row.max()
                log_probs = row - math.log(np.exp(row).sum())
                logp.append(log_probs[token])
                entropy.append(float((np.exp(log_probs) * log_probs).sum()))
                if i + 1 < len(tail):
                    self.llm.eval([token])
            out.append(Certainty(float(np.mean(logp)), float(np.mean(entropy)), len(tail)))
        return out

    def _read(self, ids: list[int]) -> None:
        """Evaluate `ids` from position 0, reusing the cached prefix shared with what was read last."""
        shared = 0
        for a, b in zip(self.llm.input_ids[: self.llm.n_tokens], ids[:-1]):
            if a != b:
                break
            shared += 1
        self.llm.n_tokens = shared  # eval() drops the cache from here on
        self.llm.eval(ids[shared:])

    def _last_logits(self) -> np.ndarray:
        """Logits after the last evaluated token (the only position whose logits llama.cpp kept)."""
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).astype(np.float64)


QUANT_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def requantised(path: Path, kind: str) -> Path:
    """A copy of the GGUF at `path` with its weights requantised to `kind` by llama.cpp, made once
    into the cache (keyed by the source's sha256; written beside, then renamed)."""
    llama_cpp = _llama_cpp()
    target = cache_dir() / "generators" / "gguf" / f"{path.stem}.{kind}-{file_sha256(path)[:12]}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = getattr(llama_cpp, QUANT_TYPES[kind]), True, _cores()
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr(disable=False):  # llama.cpp logs a line per tensor
        failed = llama_cpp.llama_model_quantize(str(path).encode(), str(partial).encode(), ctypes.byref(params))
    if failed:
        partial.unlink(missing_ok=True)
        raise ModelNotFoundError(f"llama.cpp could not requantise {path} to {kind} (code {failed}); "
                                 f"check free space in {target.parent}")
    os.replace(partial, target)
    return target


def _cores() -> int:
    """Physical cores this process may use: llama.cpp is slower on hyper-threads than on cores alone."""
    physical = psutil.cpu_count(logical=False)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(available, physical or available))
