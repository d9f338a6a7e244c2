"""What every generator backend offers and shares: the interface, certainty scores, the stop on
a repeating answer, and streamed text pieces."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from .rope import ContextExtension

REPEAT_TOKENS = 8  # an answer whose last 8 tokens already occurred in it has started to loop: stop there


@dataclass(frozen=True)
class Certainty:
    """How sure the model is of a continuation given a prefix (XL3M-style segment scoring)."""

    log_likelihood: float  # mean log p(token | everything before it) over the continuation
    neg_entropy: float  # mean −H(next-token distribution) at the continuation positions
    tokens: int  # continuation length in tokens


class GeneratorBackend(Protocol):
    """A causal LM that answers greedily and scores continuations; prompts over `window` are refused."""

    name: str
    backend: str
    extension: ContextExtension
    max_positions: int  # the length the model was trained on

    @property
    def window(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def special_tokens(self) -> list[str]:
        """The control-token strings of the tokenizer (what a document must never smuggle in)."""

    def chat_prompt(self, system: str, user: str) -> str:
        """The model's own chat format, ending where the assistant's answer starts."""

    def generate(self, prompt: str, max_new_tokens: int = 256, stream: Callable[[str], None] | None = None,
                 *, beyond_window: bool = False) -> str:
        """Greedy answer; `stream` receives text pieces as they are decoded."""

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[Certainty]:
        """Certainty of each continuation given its prefix."""


def looped(answer: Sequence[int], n: int = REPEAT_TOKENS) -> bool:
    """True once the last `n` tokens already occurred earlier in the answer: a small model that
    starts repeating itself repeats to the token limit."""
    if len(answer) < 2 * n:
        return False
    last = list(answer[-n:])
    return any(list(answer[i:i + n]) == last for i in range(len(answer) - 2 * n + 1))


def window_error(tokens: int, window: int, extension: ContextExtension, max_new_tokens: int) -> str:
    return (f"prompt has {tokens} tokens; the generator's window is {window} (method {extension.describe()}; "
            f"{max_new_tokens} tokens kept for the answer); lower --budget or choose a context extension")


class TextPieces:
    """Hands decoded text to a callback as tokens arrive; the pieces join to the final text. The
    last `hold` tokens wait until `finish` says what the answer is (a repeated run is cut)."""

    def __init__(self, decode: Callable[[list[int]], str], callback: Callable[[str], None], hold: int = 0):
        self.decode, self.callback, self.hold = decode, callback, hold
        self.ids: list[int] = []
        self.sent = ""

    def add(self, ids: Sequence[int]) -> None:
        self.ids += ids
        self._flush(self.ids[: len(self.ids) - self.hold], final=False)

    def finish(self, answer: list[int]) -> None:
        self._flush(answer, final=True)

    def _flush(self, ids: list[int], final: bool) -> None:
        text = self.decode(ids)
        if not final and text.endswith("\ufffd"):  # a multi-byte character is not complete yet
            return
        if len(text) > len(self.sent) and text.startswith(self.sent):
            self.callback(text[len(self.sent):])
            self.sent = text
