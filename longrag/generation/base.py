"""What every generator backend offers and shares: the interface, certainty scores, the stop on
a repeating answer, and streamed text pieces."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..errors import ConfigError
from .settings import ContextExtension

REPEAT_TOKENS = 8  # an answer whose last 8 tokens already occurred in it has started to loop: stop there


@dataclass(frozen=True)
class Certainty:
    """How sure the model is of a continuation given a prefix (XL3M-style segment scoring)."""

    log_likelihood: float  # mean log p(token | everything before it) over the continuation
    neg_entropy: float  # mean −H(next-token distribution) at the continuation positions
    tokens: int  # continuation length in tokens


Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}

# What a backend may offer beyond answering messages; features that need one check for it (`require`).
CAPABILITIES = {
    "tokens": "exact token counts from the model's own tokenizer",
    "score": "log-probabilities of given continuations",
    "raw": "raw prompts in the model's own chat format (chat_prompt, generate, score on text)",
    "extension": "RoPE context extension",
}


class GeneratorBackend(Protocol):
    """A model that answers chat messages greedily (streamed); prompts over `window` are refused.

    Every backend offers `chat`, `count_chat`, `window`, `special_tokens` and `capabilities`; what
    else it offers is named in `capabilities` (see CAPABILITIES): `choice_logprobs` needs "score"."""

    name: str
    backend: str
    capabilities: frozenset[str]

    @property
    def window(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` (exact with "tokens", else a stated conservative estimate)."""

    def count_chat(self, messages: Sequence[Message]) -> int:
        """Prompt tokens these messages take as the model reads them."""

    def special_tokens(self) -> list[str]:
        """The control-token strings of the tokenizer (what a document must never smuggle in)."""

    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256,
             stream: Callable[[str], None] | None = None) -> str:
        """Greedy reply to the messages; `stream` receives text pieces as they are decoded."""

    def choice_logprobs(self, messages: Sequence[Message], options: Sequence[str]) -> list[float]:
        """log p(option starts the reply) for each option (needs "score")."""


def require(generator, capability: str, feature: str) -> None:
    """A clear refusal when `feature` needs a capability the generator's backend lacks."""
    if capability not in getattr(generator, "capabilities", frozenset(CAPABILITIES)):
        raise ConfigError(f"{feature} needs {CAPABILITIES[capability]}, which the {generator.backend} backend "
                          f"({generator.name}) does not offer; use a local generator (generator.backend: "
                          "llama.cpp or transformers) or another method")


class LocalChat:
    """The message interface of a backend that runs the model in this process: messages are put in
    the model's own chat template (`chat_prompt`), then generated from or scored as raw text."""

    capabilities = frozenset(CAPABILITIES)

    def chat_prompt(self, system: str, user: str) -> str:
        """The model's own chat format, ending where the assistant's answer starts."""
        return self.render([{"role": "system", "content": system}, {"role": "user", "content": user}])

    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256,
             stream: Callable[[str], None] | None = None) -> str:
        return self.generate(self.render(messages), max_new_tokens=max_new_tokens, stream=stream)

    def count_chat(self, messages: Sequence[Message]) -> int:
        return self.count_tokens(self.render(messages))

    def choice_logprobs(self, messages: Sequence[Message], options: Sequence[str]) -> list[float]:
        prompt = self.render(messages)
        return [c.log_likelihood * c.tokens for c in self.score([(prompt, o) for o in options])]


def plain_render(messages: Sequence[Message]) -> str:
    """Messages as plain text, for a model without a chat template."""
    return "\n\n".join(m["content"] for m in messages) + "\n"


def looped(answer: Sequence[int], n: int = REPEAT_TOKENS) -> bool:
    """True once the last `n` tokens already occurred earlier in the answer: a small model that
    starts repeating itself repeats to the token limit."""
    if len(answer) < 2 * n:
        return False
    last = list(answer[-n:])
    return any(list(answer[i:i + n]) == last for i in range(len(answer) - 2 * n + 1))


def window_error(tokens: int, window: int, extension: ContextExtension, max_new_tokens: int) -> str:
    return (f"prompt has {tokens} tokens; the generator's window is {window} (method {extension.describe()}; "
            f"{max_new_tokens} tokens kept for the answer); lower ask.budget or choose a context extension")


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
