"""A causal LM with an extended window: greedy answers (streamed) and certainty scores.

Prompts longer than the window are refused, never cut: the caller decides what to drop.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig, StoppingCriteria,
                          StoppingCriteriaList)
from transformers.generation.streamers import BaseStreamer

from ..devices import check_device
from ..errors import ConfigError, InputError
from .base import REPEAT_TOKENS, Certainty, LocalChat, Message, TextPieces, looped, plain_render, window_error
from .weights import resolve_generator
from .context_extension import enable_selfextend, scale_rope
from .settings import DTYPES as DTYPE_NAMES, ContextExtension, effective_window

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}  # torch.float32, ...


class TransformersGenerator(LocalChat):
    """Greedy generation and scoring with one transformers causal LM whose RoPE context is extended."""

    backend = "transformers"

    def __init__(self, model, tokenizer, extension: ContextExtension, max_positions: int, name: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.extension = extension
        self.max_positions = max_positions  # the length the model was trained on
        self.name = name

    @classmethod
    def from_settings(cls, name: str = "SmolLM2-135M-Instruct", extension: ContextExtension = ContextExtension(),
                      dtype: str = "auto", device: str = "cpu") -> "TransformersGenerator":
        """Load a packaged name, local folder or cached hub id; dtype auto = float32 on CPU, bfloat16 on CUDA."""
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be auto or one of {', '.join(DTYPES)}, got {dtype!r}")
        check_device(device, "generator.device")
        path = resolve_generator(name)
        config = AutoConfig.from_pretrained(path)
        max_positions = config.max_position_embeddings
        effective_window(max_positions, extension)  # rejects a SelfExtend window the model cannot hold
        scale_rope(config, extension)
        model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=DTYPES[dtype]).to(device)
        if extension.method == "selfextend":
            enable_selfextend(model, extension)
        return cls(model, AutoTokenizer.from_pretrained(path), extension, max_positions, name)

    @property
    def window(self) -> int:
        return effective_window(self.max_positions, self.extension)

    def _ids(self, text: str) -> list[int]:
        # prompts come from the chat template, which already writes the special tokens
        return self.tokenizer(text, add_special_tokens=False).input_ids

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.tokenizer.eos_token_id if pad is None else pad

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def special_tokens(self) -> list[str]:
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        return sorted({t.content for t in added.values() if getattr(t, "special", False)}
                      | set(self.tokenizer.all_special_tokens))

    def render(self, messages: Sequence[Message]) -> str:
        """The model's own chat format, ending where the assistant's answer starts."""
        if not self.tokenizer.chat_template:
            return plain_render(messages)
        return self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def generate(self, prompt: str, max_new_tokens: int = 256, stream: Callable[[str], None] | None = None,
                 *, beyond_window: bool = False) -> str:
        """Greedy answer to `prompt`; `stream` receives text pieces as they are decoded.

        `beyond_window=True` runs a prompt past the window anyway, to measure what happens there.
        """
        ids = self._ids(prompt)
        if not beyond_window and len(ids) > self.window - max_new_tokens:
            raise InputError(window_error(len(ids), self.window, self.extension, max_new_tokens))
        device = self.model.device
        inputs = torch.tensor([ids], device=device)
        settings = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=self.tokenizer.eos_token_id,
                                    pad_token_id=self._pad_id)
        pieces = TextPieces(self._decode, stream, hold=REPEAT_TOKENS) if stream else None
        loop = _StopOnLoop(len(ids), REPEAT_TOKENS)
        with torch.inference_mode():
            out = self.model.generate(inputs, attention_mask=torch.ones_like(inputs), generation_config=settings,
                                      streamer=pieces and _Streamer(pieces), stopping_criteria=StoppingCriteriaList([loop]))
        answer = out[0, len(ids):].tolist()
        if loop.looped:  # drop the run that began to repeat: the answer says it once
            answer = answer[: len(answer) - REPEAT_TOKENS]
        if pieces:
            pieces.finish(answer)
        return self._decode(answer)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[Certainty]:
        """Certainty of each continuation given its prefix, e.g. (segment, question) pairs.

        Pairs are batched with left padding, so every continuation ends each row and only the
        logits of the last positions are computed.
        """
        encoded = [(self._ids(prefix), self._ids(continuation)) for prefix, continuation in pairs]
        for prefix, continuation in encoded:
            if not prefix or not continuation:
                raise InputError("score() needs a non-empty prefix and continuation in every pair")
            if len(prefix) + len(continuation) > self.window:
                raise InputError(f"pair has {len(prefix) + len(continuation)} tokens; the generator's window is "
                                 f"{self.window} (method {self.extension.describe()})")
        results = []
        for first in range(0, len(encoded), batch_size):
            results += self._score_batch(encoded[first:first + batch_size])
        return results

    def _score_batch(self, batch: list[tuple[list[int], list[int]]]) -> list[Certainty]:
        device = self.model.device
        length = max(len(p) + len(c) for p, c in batch)
        keep = max(len(c) for _, c in batch) + 1
        input_ids = torch.full((len(batch), length), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, (prefix, continuation) in enumerate(batch):
            sequence = prefix + continuation
            input_ids[row, length - len(sequence):] = torch.tensor(sequence)
            mask[row, length - len(sequence):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row starts at position 0 after its padding
        with torch.inference_mode():
            logits = self.model(input_ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                                use_cache=False, logits_to_keep=keep).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predicts the last keep-1 tokens
        targets = input_ids[:, length - keep + 1:].to(device)
        token_logp = logp.gather(-1, targets[..., None])[..., 0]
        neg_entropy = (logp.exp() * logp).sum(-1)
        out = []
        for row, (_, continuation) in enumerate(batch):
            n = len(continuation)
            out.append(Certainty(token_logp[row, -n:].mean().item(), neg_entropy[row, -n:].mean().item(), n))
        return out


class _StopOnLoop(StoppingCriteria):
    """Stop greedy decoding once the answer loops (see `looped`)."""

    def __init__(self, prompt_length: int, n: int):
        self.prompt_length, self.n = prompt_length, n
        self.looped = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.looped = looped(input_ids[0, self.prompt_length:].tolist(), self.n)
        return torch.full((input_ids.shape[0],), self.looped, dtype=torch.bool, device=input_ids.device)


class _Streamer(BaseStreamer):
    """generate()'s streamer interface over TextPieces; generate() pushes the prompt first."""

    def __init__(self, pieces: TextPieces):
        self.pieces = pieces
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if self.prompt_seen:
            self.pieces.add(value.flatten().tolist())
        self.prompt_seen = True

    def end(self) -> None:
        """The text is completed by TextPieces.finish, once the answer is known."""
