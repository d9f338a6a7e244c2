"""The ask flow, one way: question → hits → candidate segments → evidence → quotes → checked
reading → Answer (with locations). `Pipeline.ask` hands it the loaded stages; nothing here loads a
model or opens an index, so the CLI, the server and apps all run this one path."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import retrieval
from .config import Config
from .documents.locations import answer_with_locations
from .encoders import Encoder
from .errors import InputError
from .generation import GeneratorBackend
from .index import IndexStore
from .reasoning import NOT_FOUND, SELECTORS, Answer, Selection, candidates_of, citations, make_selector
from .reasoning.answer import DECLINED, NO_EVIDENCE, UNRELATED, read_answer
from .reasoning.verdict import quotes_from

PROMPT_ROOM = 64  # generator tokens kept for the chat template and instructions beyond the evidence budget


@dataclass(frozen=True)
class Stages:
    """What answering reads from: the open index, the encoder, the generator and (loaded only when a
    reading is checked) the checker."""

    store: IndexStore
    encoder: Encoder
    generator: GeneratorBackend
    checker: Callable[[], GeneratorBackend]
    config: Config


def evidence_room(generator: GeneratorBackend, max_new_tokens: int) -> int:
    """Generator tokens left for evidence once the answer and the prompt's own words have room."""
    return generator.window - max_new_tokens - PROMPT_ROOM


def check_request(stages: Stages, question: str, selector: str, budget: int) -> None:
    """Refuse, before any model runs, a request that cannot be answered as asked."""
    if not question or not question.strip():
        raise InputError("empty question")
    if selector not in SELECTORS:
        raise InputError(f"unknown selector {selector!r}; choose one of {', '.join(SELECTORS)}")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise InputError(f"budget must be a positive number of tokens, got {budget!r}")
    if not stages.store.documents():
        raise InputError(f"index {stages.store.path} holds no documents: index some with `longrag index DIR`")
    generator, max_new = stages.generator, stages.config.generator.max_new_tokens
    room = evidence_room(generator, max_new)
    if budget > room:
        raise InputError(f"budget of {budget} tokens does not fit the generator's window of {generator.window} "
                         f"tokens ({generator.extension.describe()}; {max_new} kept for the answer, "
                         f"{PROMPT_ROOM} for the prompt): use at most {room}, or extend the generator's "
                         "context (generator.extension)")
    n_question = generator.count_tokens(question)
    if n_question > budget:
        raise InputError(f"the question has {n_question} tokens, more than the evidence budget of {budget}; "
                         "shorten it or raise --budget")


def ask(stages: Stages, question: str, selector: str | None = None, budget: int | None = None,
        stream: Callable[[str], None] | None = None) -> Answer:
    """Answer `question` (see `Pipeline.ask`)."""
    started = time.perf_counter()
    settings = stages.config.ask
    name = selector or settings.selector
    budget = settings.budget if budget is None else budget
    check_request(stages, question, name, budget)
    store, encoder, generator = stages.store, stages.encoder, stages.generator

    query = encoder.encode_queries([question])[0]  # the one encoding of the question
    hits = retrieval.search(store, question, query, stages.config, settings.documents)
    candidates = [c for hit in hits for c in candidates_of(store, hit.doc_id)]
    relevance = max((float(np.dot(c.vector, query)) for c in candidates if c.vector is not None), default=None)

    def finish(text: str, chosen: Selection | None, tokens_in: int = 0, cited=(), flags=(), quotes=(),
               verdict=None, not_found: str | None = None) -> Answer:
        withheld = verdict.withheld if verdict else None
        shown = f"no answer shown: {withheld}" if withheld else text
        if stream:
            stream(shown)
        return answer_with_locations(store, Answer(
            answer=shown, citations=list(cited), selector=name, tokens_in=tokens_in,
            seconds=round(time.perf_counter() - started, 3), dropped=chosen.dropped if chosen else 0,
            found=not_found is None, not_found=not_found,
            unverified_quotes=list(chosen.unverified) if chosen else [], relevance=relevance, flags=list(flags),
            quotes=list(quotes), withheld=withheld, reading=text,
            evidence=citations(chosen.evidence, range(1, len(chosen.evidence) + 1)) if chosen else [],
            check=verdict.record() if verdict else {}))

    if not candidates or relevance is None or relevance < settings.min_relevance:
        return finish(NOT_FOUND, None, not_found=UNRELATED)
    parts = dict(count_tokens=generator.count_tokens, encoder=encoder, generator=generator,
                 first_stage=settings.first_stage, candidates=settings.candidates, certainty=settings.certainty,
                 quote_threshold=settings.quote_threshold, pool=settings.pool, known={question: query})
    chosen = make_selector(name, **parts).select(question, candidates, budget)
    if not chosen.evidence:
        return finish(NOT_FOUND, chosen, not_found=NO_EVIDENCE)
    # the selector's own ranking of the candidates, when it is the first stage's (default: hybrid): not ranked twice
    first = chosen.notes.get("ranking", {}).get(settings.first_stage)
    ranked = chosen.notes.get("sentences") or make_selector("sentences", **parts).rank(question, candidates, first)
    quotes = quotes_from(ranked, chosen.evidence, settings.quotes)
    text, tokens_in, cited, flags, verdict = read_answer(
        generator, stages.checker(), question, chosen.evidence, quotes, stages.config.generator.max_new_tokens,
        settings.lean, settings.unsure, settings.support_threshold, settings.answerable)
    not_found = (verdict.not_found if verdict and verdict.not_found else DECLINED) if text == NOT_FOUND else None
    return finish(text, chosen, tokens_in, cited, flags, quotes, verdict, not_found=not_found)
