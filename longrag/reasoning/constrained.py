"""Copy-constrained reading: the generator's reply is forced to be a contiguous span of the blocks.

The constraint works on bytes, not on the blocks' own tokenization: a token is allowed when its text
continues the copied text at some position of a block, so the model may spell the span with any
tokens (its reply starts without the block's leading space, "Belgian" for " Belgian"), and the span
maps back to exact character offsets. The first token may start at any word edge of a block.

Beam over start positions: the first token is scored over every place it may start, the best few
that start at different places (`starts`) are each continued greedily under the constraint until the model ends its turn (or a
newline), the span cannot continue, or the token limit; the copy with the highest mean log-probability
wins. `starts=1` is the naive constraint (the best first token, then greedy).

The constraint needs the logits of a model in this process: llama.cpp (a `logits_processor`) and
transformers (a `LogitsProcessor`). Any other backend (an OpenAI-compatible server) raises
`ConstraintUnsupported`, and the caller keeps the free reading and its alignment (`point_or_copy`).
"""
from __future__ import annotations

import bisect
import itertools
import weakref
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..generation.base import window_error
from ..types import Citation, Evidence
from .pointing import POINT_TOKENS, Pointed, new_words, point, point_messages

STARTS = 4  # start tokens continued by the beam over start positions
ALIGNED = 0.75  # the share of new words a free reading needs to be kept without a copy (ask.aligned's default)


class ConstraintUnsupported(ConfigError):
    """The generator's backend gives no control over its next-token logits."""


@dataclass(frozen=True)
class Vocabulary:
    """A tokenizer's tokens as the bytes they write, and the tokens that end a reply."""

    pieces: dict[bytes, list[int]]  # token text (bytes) → token ids writing exactly that
    longest: int  # bytes of the longest piece
    ends: list[int]  # end-of-turn tokens, and tokens that write only a line break
    stop: int  # the end-of-turn token forced when the copy ends


@dataclass(frozen=True)
class Copy:
    """A constrained reply: the copied span (None when nothing could be copied) and its score."""

    text: str
    span: Citation | None
    logprob: float  # mean log p of the reply's tokens (its end included) under the unconstrained model
    tokens: int


class _Blocks:
    """The blocks as bytes, with the byte offset of every character (to map a copy back) and the
    byte offsets where a copy may start (a word edge: not inside a run of letters and digits)."""

    def __init__(self, blocks: Sequence[Evidence]):
        self.blocks = list(blocks)
        self.data = [e.text.encode("utf-8") for e in blocks]
        self.offsets = [list(itertools.accumulate((len(c.encode("utf-8")) for c in e.text), initial=0)) for e in blocks]
        self.edges = [[self.offsets[k][i] for i, c in enumerate(e.text)
                       if not c.isspace() and (i == 0 or not (c.isalnum() and e.text[i - 1].isalnum()))]
                      for k, e in enumerate(blocks)]

    def citation(self, k: int, a: int, b: int) -> Citation:
        """The document span of bytes a:b of block k (widened to whole characters, whitespace trimmed)."""
        block, offsets = self.blocks[k], self.offsets[k]
        start, end = bisect.bisect_right(offsets, a) - 1, bisect.bisect_left(offsets, b)
        text = block.text[start:end]
        start += len(text) - len(text.lstrip())
        end -= len(text) - len(text.rstrip())
        return Citation(block.doc_id, block.path, block.start + start, block.start + end, block.text[start:end])


class _Copier:
    """One constrained reply: at each step, the model's best token among those continuing the copy at
    one of its positions (or ending it), forced by returning that token alone."""

    def __init__(self, blocks: _Blocks, vocab: Vocabulary, first: int, first_logprob: float,
                 positions: list[tuple[int, int, int]]):
        self.blocks, self.vocab = blocks, vocab
        self.tokens, self.logprobs = [first], [first_logprob]
        self.positions = positions  # (block, start byte, next byte) of every place the copy so far occurs
        self.done = False

    def _next(self) -> dict[int, list[tuple[int, int, int]]]:
        options: dict[int, list[tuple[int, int, int]]] = {}
        for k, a, at in self.positions:
            data = self.blocks.data[k]
            for n in range(1, min(self.vocab.longest, len(data) - at) + 1):
                for token in self.vocab.pieces.get(data[at:at + n], ()):
                    options.setdefault(token, []).append((k, a, at + n))
        return options

    def choose(self, logits: np.ndarray) -> int:
        """The token to emit after `logits` (the model's raw next-token scores)."""
        logprobs = _log_softmax(logits)
        options = {} if self.done else self._next()
        ids = np.fromiter(options, dtype=np.int64, count=len(options))
        ids = ids[ids < len(logprobs)]
        end = float(logprobs[self.vocab.ends].max())
        if len(ids) and logprobs[ids].max() > end:
            token = int(ids[np.argmax(logprobs[ids])])
            self.tokens.append(token)
            self.logprobs.append(float(logprobs[token]))
            self.positions = options[token]
            return token
        if not self.done:
            self.logprobs.append(end)
            self.done = True
        return self.vocab.stop

    def copy(self) -> tuple[int, int, int]:
        """(block, start byte, end byte) of the copy: its first place in the blocks."""
        return min(self.positions)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    row = logits.astype(np.float64)
    row = row - row.max()
    return row - np.log(np.exp(row).sum())


def _forced(logits: np.ndarray, token: int) -> np.ndarray:
    out = np.full(logits.shape, -np.inf, dtype=logits.dtype)
    out[token] = 0.0
    return out


# ---- backends: their vocabulary as bytes, the logits of the reply's first token, a constrained reply ----

def _vocabulary(pieces: Sequence[bytes], ends: set[int], stop: int) -> Vocabulary:
    table: dict[bytes, list[int]] = {}
    for token, piece in enumerate(pieces):
        if piece and token not in ends:
            table.setdefault(piece, []).append(token)
    breaks = {t for t, p in enumerate(pieces) if p and not p.strip() and b"\n" in p}
    return Vocabulary(table, max(map(len, table)), sorted(ends | breaks), stop)


class _LlamaCpp:
    """llama-cpp-python: the greedy sampler after a `logits_processor` that leaves one token."""

    def __init__(self, generator):
        import llama_cpp

        self.generator, self.llm = generator, generator.llm
        vocab = self.llm._model.vocab
        ends = {t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
        stop = self.llm.token_eos() if self.llm.token_eos() in ends else min(ends)
        # special=False: control tokens write nothing, so a document can never be copied into one
        self.vocab = _vocabulary([self.llm.detokenize([t], special=False) for t in range(self.llm.n_vocab())], ends, stop)

    def ids(self, prompt: str) -> list[int]:
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def _generate(self, ids: list[int], processor: Callable[[np.ndarray], int], max_new_tokens: int) -> None:
        from llama_cpp import LogitsProcessorList

        def logits_processor(input_ids, scores):
            return _forced(scores, processor(scores))

        steps = self.llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True,
                                  logits_processor=LogitsProcessorList([logits_processor]))
        for n, token in enumerate(steps, 1):  # llama.cpp reuses the cached prompt: each start costs its own tokens
            if token in self.vocab.ends or n >= max_new_tokens:
                break

    def first_logits(self, ids: list[int]) -> np.ndarray:
        seen = []
        self._generate(ids, lambda scores: seen.append(scores.copy()) or self.vocab.stop, 1)
        return seen[0]

    def continue_copy(self, ids: list[int], copier: _Copier, max_new_tokens: int) -> None:
        self._generate(ids, copier.choose, max_new_tokens)


class _Transformers:
    """transformers: greedy `generate` after a `LogitsProcessor` that leaves one token."""

    def __init__(self, generator):
        self.generator, self.model, self.tokenizer = generator, generator.model, generator.tokenizer
        tokenizer = self.tokenizer
        eos = tokenizer.eos_token_id
        ends = {eos} if isinstance(eos, int) else set(eos or ())
        if not ends:
            raise ConstraintUnsupported(f"the tokenizer of {generator.name} names no end-of-sequence token, so a "
                                        "copy could not end: use the free reading (pointing.point)")
        specials = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        pieces = [b"" if t in specials - ends else _piece_bytes(tokenizer, t) for t in range(len(tokenizer))]
        self.vocab = _vocabulary(pieces, ends, min(ends))

    def ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False).input_ids

    def first_logits(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.model(torch.tensor([ids], device=self.model.device)).logits[0, -1]
        return logits.float().cpu().numpy()

    def continue_copy(self, ids: list[int], copier: _Copier, max_new_tokens: int) -> None:
        import torch
        from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

        class Forced(LogitsProcessor):
            def __call__(self, input_ids, scores):
                token = copier.choose(scores[0].float().cpu().numpy())
                out = torch.full_like(scores, float("-inf"))
                out[:, token] = 0.0
                return out

        inputs = torch.tensor([ids], device=self.model.device)
        settings = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.vocab.stop,
                                    pad_token_id=self.vocab.stop)
        with torch.inference_mode():
            self.model.generate(inputs, attention_mask=torch.ones_like(inputs), generation_config=settings,
                                logits_processor=LogitsProcessorList([Forced()]))


def _piece_bytes(tokenizer, token: int) -> bytes:
    """The bytes a token writes: byte-level BPE pieces through GPT-2's byte alphabet, SentencePiece
    pieces with their word mark as a space and <0xNN> as the byte."""
    piece = tokenizer.convert_ids_to_tokens(token)
    if piece is None:
        return b""
    byte_of = _byte_alphabet()
    if all(c in byte_of for c in piece):
        return bytes(byte_of[c] for c in piece)
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        return bytes([int(piece[3:5], 16)])
    return piece.replace("\u2581", " ").encode("utf-8")


_BYTE_ALPHABET: dict[str, int] = {}


def _byte_alphabet() -> dict[str, int]:
    if not _BYTE_ALPHABET:
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        _BYTE_ALPHABET.update({c: b for b, c in bytes_to_unicode().items()})
    return _BYTE_ALPHABET


DECODERS = {"llama.cpp": _LlamaCpp, "transformers": _Transformers}  # backends with logit control, by name
_LOADED: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def supports_copy(generator) -> bool:
    return getattr(generator, "backend", None) in DECODERS


def _decoder(generator):
    if not supports_copy(generator):
        raise ConstraintUnsupported(
            f"copy-constrained decoding needs control over the next-token logits, which the "
            f"{getattr(generator, 'backend', type(generator).__name__)} backend does not give (only llama.cpp and "
            "transformers run the model in this process): the free reading and its alignment are used instead")
    if generator not in _LOADED:  # the byte table of a vocabulary is built once per loaded model
        _LOADED[generator] = DECODERS[generator.backend](generator)
    return _LOADED[generator]


# ---- reading ----------------------------------------------------------------------------------------

def copies(generator, question: str, blocks: Sequence[Evidence], starts: int = STARTS,
           max_new_tokens: int = POINT_TOKENS) -> Iterator[Copy]:
    """The generator's replies to the pointing prompt that are each a span of one block, one per start
    token, likeliest start first (the first is the naive constraint's); lazily, so a caller can stop
    early. ConstraintUnsupported for a backend without logit control."""
    if starts < 1:
        raise InputError(f"starts must be at least 1 (1: the naive constraint), got {starts}")
    decoder = _decoder(generator)
    ids = decoder.ids(generator.render(point_messages(generator, question, blocks)))
    if len(ids) > generator.window - max_new_tokens:
        raise InputError(window_error(len(ids), generator.window, generator.extension, max_new_tokens))
    table, vocab = _Blocks(blocks), decoder.vocab
    first: dict[int, list[tuple[int, int, int]]] = {}
    for k, data in enumerate(table.data):
        for a in table.edges[k]:
            for n in range(1, min(vocab.longest, len(data) - a) + 1):
                # the reply's first token may carry the space the model puts before a word
                for lead in (b"", b" "):
                    for token in vocab.pieces.get(lead + data[a:a + n], ()):
                        first.setdefault(token, []).append((k, a, a + n))
    if not first:
        return
    logprobs = _log_softmax(decoder.first_logits(ids))
    for token in _start_tokens(first, logprobs, starts):
        copier = _Copier(table, vocab, token, float(logprobs[token]), first[token])
        if max_new_tokens > 1:
            decoder.continue_copy(ids + [token], copier, max_new_tokens - 1)
        span = table.citation(*copier.copy())
        yield Copy(span.text, span if span.text else None, float(np.mean(copier.logprobs)), len(copier.tokens))


def _start_tokens(first: dict[int, list[tuple[int, int, int]]], logprobs: np.ndarray, starts: int) -> list[int]:
    """The likeliest first tokens, each adding a place to start from: "Belgian" after " Belgian" or
    "Bel" starts where they do, and would spend the beam on one start position."""
    chosen, covered = [], set()
    for token in sorted(first, key=lambda t: -logprobs[t]):
        places = {(k, a) for k, a, _ in first[token]}
        if not places <= covered:
            chosen.append(token)
            covered |= places
            if len(chosen) == starts:
                break
    return chosen


def copy_span(generator, question: str, blocks: Sequence[Evidence], starts: int = STARTS,
              max_new_tokens: int = POINT_TOKENS) -> Copy:
    """The copy with the highest mean log-probability among the `starts` likeliest start tokens (see
    the module's docstring); an empty Copy when no token of the vocabulary starts a block's word."""
    return max(copies(generator, question, blocks, starts, max_new_tokens), key=lambda c: c.logprob,
               default=Copy("", None, float("-inf"), 0))


def as_pointed(copied: Copy, question: str) -> Pointed:
    """A copy as a pointed answer: its span is the copy itself; `aligned` is 1 when the copy adds
    words to the question, 0 when it only restates it (no answer)."""
    added = len(new_words(copied.text, question))
    return Pointed(copied.text, copied.span, 1.0 if added and copied.span else 0.0, added)


def constrained_point(generator, question: str, blocks: Sequence[Evidence], starts: int = STARTS) -> Pointed:
    """`pointing.point` with the reply forced to be a span of the blocks (`copy_span`)."""
    return as_pointed(copy_span(generator, question, blocks, starts), question)


def point_or_copy(generator, question: str, blocks: Sequence[Evidence], aligned: float = ALIGNED,
                  starts: int = STARTS) -> Pointed:
    """The free reading (`pointing.point`), and the copy-constrained one only when the free one does
    not align (`aligned`: the share of its new words needed) and the backend allows a constraint."""
    free = point(generator, question, blocks)
    if (free.span is not None and free.aligned >= aligned) or not supports_copy(generator):
        return free
    return constrained_point(generator, question, blocks, starts)
