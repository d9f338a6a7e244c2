"""`Pipeline.ask`: retrieve documents → candidate segments → select evidence → answer with citations."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..errors import ConfigError, InputError, LongragError
from .answer import NOT_FOUND, Answer, citations, generate_answer
from .candidates import candidates_of
from .evidence import Selection
from . import SELECTORS, make_selector

PROMPT_ROOM = 64  # tokens kept for the chat template and instructions beyond the evidence budget


def load_generator(settings):
    """The configured generator; any failure to load becomes one clear error."""
    from ..generation import ContextExtension, Generator

    extension = ContextExtension(settings.extension, settings.factor, settings.window, settings.group)
    try:
        return Generator.from_settings(settings.model, extension, settings.dtype, settings.device)
    except LongragError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ConfigError(f"generator {settings.model!r} could not be loaded: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def ask(pipe, question: str, selector: str | None = None, budget: int | None = None,
        stream: Callable[[str], None] | None = None) -> Answer:
    """Answer `question` from the indexed documents; see Pipeline.ask."""
    started = time.perf_counter()
    settings, gen_settings = pipe.config.ask, pipe.config.generator
    name = selector or settings.selector
    budget = settings.budget if budget is None else budget
    if not question or not question.strip():
        raise InputError("empty question")
    if name not in SELECTORS:
        raise InputError(f"unknown selector {name!r}; choose one of {', '.join(SELECTORS)}")
    if budget < 1:
        raise InputError(f"budget must be a positive number of tokens, got {budget}")
    store = pipe.store
    if not store.documents():
        raise InputError(f"index {store.path} holds no documents: index some with `longrag index DIR`")
    generator = pipe.generator
    room = generator.window - gen_settings.max_new_tokens - PROMPT_ROOM
    if budget > room:
        raise InputError(f"budget of {budget} tokens does not fit the generator's window of {generator.window} "
                         f"tokens ({generator.extension.describe()}; {gen_settings.max_new_tokens} kept for the "
                         f"answer, {PROMPT_ROOM} for the prompt): use at most {room}, or extend the generator's "
                         "context (generator.extension)")
    n_question = generator.count_tokens(question)
    if n_question > budget:
        raise InputError(f"the question has {n_question} tokens, more than the evidence budget of {budget}; "
                         "shorten it or raise --budget")

    from .. import retrieval

    query = pipe.encoder.encode_queries([question])[0]
    hits = retrieval.search(store, question, query, pipe.config, settings.documents)
    candidates = [c for hit in hits for c in candidates_of(store, hit.doc_id)]
    relevance = max((float(np.dot(c.vector, query)) for c in candidates if c.vector is not None), default=None)

    def finish(text: str, chosen: Selection | None, tokens_in: int = 0, used=()) -> Answer:
        return Answer(answer=text, citations=citations(used), selector=name, tokens_in=tokens_in,
                      seconds=round(time.perf_counter() - started, 3), dropped=chosen.dropped if chosen else 0,
                      found=text != NOT_FOUND, unverified_quotes=list(chosen.unverified) if chosen else [],
                      relevance=relevance)

    if not candidates or relevance is None or relevance < settings.min_relevance:
        if stream:
            stream(NOT_FOUND)
        return finish(NOT_FOUND, None)
    chosen = make_selector(name, count_tokens=generator.count_tokens, encoder=pipe.encoder, generator=generator,
                           first_stage=settings.first_stage, candidates=settings.candidates,
                           certainty=settings.certainty, quote_threshold=settings.quote_threshold,
                           ).select(question, candidates, budget)
    if not chosen.evidence:
        if stream:
            stream(NOT_FOUND)
        return finish(NOT_FOUND, chosen)
    text, tokens_in, used = generate_answer(generator, question, chosen.evidence, gen_settings.max_new_tokens, stream)
    return finish(text, chosen, tokens_in, used)
