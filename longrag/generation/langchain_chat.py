"""A LangChain chat model as longrag's generator: any `langchain_core` `BaseChatModel` (ChatOpenAI,
ChatAnthropic, ChatOllama, a fake for tests, ...) answers the messages through `.stream()`.

`as_generator(obj)` is what `Pipeline(generator=...)` calls: a GeneratorBackend passes through, a
chat model is wrapped. Its capabilities are none: tokens are estimated (`estimate_tokens`), and
features that need exact tokens or log-probabilities refuse with a clear error (`require`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..errors import ConfigError, InputError, LongragError
from .base import REPEAT_TOKENS, GeneratorBackend, Message, TextPieces, looped, require
from .settings import ContextExtension
from .estimate import COMMON_SPECIALS, estimate_chat, estimate_tokens

DEFAULT_WINDOW = 8192  # a chat model's context when the caller does not say (most current models have more)


class LangChainGenerator:
    """Greedy-as-configured chat with a LangChain chat model.

    `context_window` (default 8192 tokens) is the prompt plus answer the model may take; a prompt
    whose estimate plus `max_new_tokens` exceeds it is refused before the model is called (nothing
    is cut). Token counts are `estimate_tokens` (never under in our measurements, 1.8× on English prose), and a chat adds 8 a
    message and 32 a prompt for the template. Sampling (temperature) and the model's own answer
    limit are the model's settings: set temperature=0 and max_tokens on the model you pass; longrag
    stops reading the stream once it repeats itself (`looped` on the streamed pieces) or after
    `max_new_tokens` pieces (a piece is one token or more). special_tokens() are those of the
    widespread chat formats, since LangChain does not expose the tokenizer."""

    backend = "langchain"
    capabilities = frozenset()
    extension = ContextExtension()  # none (for callers that describe the window)

    def __init__(self, model, context_window: int | None = None):
        if context_window is not None and (isinstance(context_window, bool) or not isinstance(context_window, int)
                                           or context_window < 1):
            raise ConfigError(f"context_window must be a positive number of tokens, got {context_window!r}")
        self.model = model
        self._window = context_window or DEFAULT_WINDOW
        self.name = str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)

    def __repr__(self) -> str:
        return f"LangChainGenerator({self.name!r}, window={self._window})"

    @property
    def window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def count_chat(self, messages: Sequence[Message]) -> int:
        return estimate_chat(messages)

    def special_tokens(self) -> list[str]:
        return list(COMMON_SPECIALS)

    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256,
             stream: Callable[[str], None] | None = None) -> str:
        prompt = self.count_chat(messages)
        if prompt + max_new_tokens > self.window:
            raise InputError(f"prompt has {prompt} tokens (estimated) and {max_new_tokens} are kept for the answer: "
                             f"{prompt + max_new_tokens} > the generator's window of {self.window} (context_window); "
                             "lower ask.budget; nothing was sent")
        pieces = TextPieces("".join, stream, hold=REPEAT_TOKENS) if stream else None
        answer: list[str] = []
        try:
            for chunk in self.model.stream(_lc_messages(messages)):
                piece = _text(chunk.content)
                if not piece:
                    continue
                answer.append(piece)
                if pieces:
                    pieces.add([piece])
                if looped(answer):
                    answer = answer[: len(answer) - REPEAT_TOKENS]
                    break
                if len(answer) >= max_new_tokens:
                    break
        except LongragError:
            raise
        except Exception as exc:  # noqa: BLE001 - a provider's error becomes one line for the CLI
            line = (str(exc).strip().splitlines() or [""])[0][:200]
            raise LongragError(f"the LangChain chat model {self.name} failed: {type(exc).__name__}: {line}") from None
        if pieces:
            pieces.finish(answer)
        return "".join(answer)

    def choice_logprobs(self, messages: Sequence[Message], options: Sequence[str]) -> list[float]:
        require(self, "score", "choice_logprobs")  # refuses: LangChain gives no log-probabilities
        return []


def _lc_messages(messages: Sequence[Message]) -> list:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    try:
        return [kinds[m["role"]](content=m["content"]) for m in messages]
    except KeyError as exc:
        raise InputError(f"message role {exc.args[0]!r} is not system, user or assistant") from None


def _text(content: Any) -> str:
    """A chunk's text: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else p.get("text", "") for p in content
                       if isinstance(p, str) or isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def _is_backend(obj: Any) -> bool:
    """Has the GeneratorBackend methods and a window (not read: a server's window is asked on first use)."""
    methods = all(callable(getattr(obj, name, None)) for name in ("chat", "count_chat", "count_tokens", "special_tokens"))
    window = hasattr(type(obj), "window") or "window" in getattr(obj, "__dict__", {})
    return methods and window and isinstance(getattr(obj, "backend", None), str)


def as_generator(obj: Any, context_window: int | None = None) -> GeneratorBackend:
    """`obj` as longrag's generator: a GeneratorBackend as it is; a LangChain `BaseChatModel` wrapped
    in LangChainGenerator with `context_window` (default 8192). Anything else, or a context_window
    given with a GeneratorBackend (which knows its own window), raises ConfigError."""
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:
        BaseChatModel = None
    if BaseChatModel is not None and isinstance(obj, BaseChatModel):
        return LangChainGenerator(obj, context_window)
    if _is_backend(obj):
        if context_window is not None:
            raise ConfigError(f"context_window is for a LangChain chat model; the {obj.backend} generator "
                              f"{getattr(obj, 'name', '')} has its own window")
        return obj
    hint = "" if BaseChatModel is not None else " (langchain-core is not installed: pip install 'longrag[langchain]')"
    raise ConfigError(f"generator must be a longrag GeneratorBackend or a LangChain BaseChatModel, got "
                      f"{type(obj).__name__}{hint}")


__all__ = ["LangChainGenerator", "as_generator", "DEFAULT_WINDOW"]
