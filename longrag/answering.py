"""The ask flow, one way: question → hits → candidate segments → evidence → quotes → checked
reading → Answer (with locations). `Pipeline.ask` hands it the loaded stages; nothing here loads a
model or opens an index, so the CLI, the server and apps all run this one path."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import retrieval
from .budget import check_budget, check_question_fits
from .config import Config
from .documents.locations import answer_with_locations, with_locations
from .encoders import Encoder
from .errors import InputError
from .generation import GeneratorBackend
from .index import IndexStore
from .reasoning import NOT_FOUND, SELECTORS, Answer, Selection, candidates_of, citations, make_selector
from .reasoning.answer import NO_EVIDENCE, UNRELATED, Reading, read_answer
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
    check_budget(budget)
    if not stages.store.documents():
        raise InputError(f"index {stages.store.path} holds no documents: index some with `longrag index DIR`")
    generator, max_new = stages.generator, stages.config.generator.max_new_tokens
    room = evidence_room(generator, max_new)
    if budget > room:
        raise InputError(f"ask.budget of {budget} tokens does not fit the generator's window of {generator.window} "
                         f"tokens ({generator.extension.describe()}; {max_new} kept for the answer, "
                         f"{PROMPT_ROOM} for the prompt): use at most {room}, or extend the generator's "
                         "context (generator.extension)")
    check_question_fits(generator.count_tokens(question), budget)


def select_evidence(stages: Stages, question: str, query: np.ndarray, candidates: list, name: str,
                    budget: int) -> tuple[Selection, list]:
    """The evidence `name` selects within `budget` tokens, and the ranking of its sentences that quotes
    are taken from (the one the selector made, or one from its first-stage ranking: never ranked twice)."""
    settings, generator = stages.config.ask, stages.generator
    parts = dict(count_tokens=generator.count_tokens, encoder=stages.encoder, generator=generator,
                 first_stage=settings.first_stage, candidates=settings.candidates, certainty=settings.certainty,
                 quote_threshold=settings.quote_threshold, pool=settings.pool, known={question: query})
    chosen = make_selector(name, **parts).select(question, candidates, budget)
    if not chosen.evidence:
        return chosen, []
    ranked = (chosen.rankings.get("sentences")
              or make_selector("sentences", **parts).rank(question, candidates, chosen.rankings.get(settings.first_stage)))
    return chosen, ranked


def ask_events(stages: Stages, question: str, selector: str | None = None,
               budget: int | None = None) -> Iterator[tuple[str, Any]]:
    """Answer `question` (see `Pipeline.ask`) stage by stage: yields ("documents", hits) once the
    documents are retrieved, ("quotes", quotes) once they are chosen (before any model reads them),
    then ("answer", Answer); the last event is always ("done", Answer). A server streams these; `ask`
    returns the last."""
    started = time.perf_counter()
    settings = stages.config.ask
    name = selector or settings.selector
    budget = settings.budget if budget is None else budget
    check_request(stages, question, name, budget)
    store, encoder, generator = stages.store, stages.encoder, stages.generator

    query = encoder.encode_queries([question])[0]  # the one encoding of the question
    hits = retrieval.search(store, question, query, stages.config, settings.documents)
    yield "documents", hits
    candidates = [c for hit in hits for c in candidates_of(store, hit.doc_id)]
    relevance = max((float(np.dot(c.vector, query)) for c in candidates if c.vector is not None), default=None)

    def finish(chosen: Selection | None, quotes=(), reading: Reading | None = None,
               not_found: str | None = None) -> Answer:
        verdict = reading.verdict if reading else None
        withheld = verdict.withheld if verdict else None
        text = reading.text if reading else NOT_FOUND
        answer = answer_with_locations(store, Answer(
            answer=f"no answer shown: {withheld}" if withheld else text,
            citations=list(reading.cited) if reading else [], selector=name,
            tokens_in=reading.tokens_in if reading else 0,
            seconds=round(time.perf_counter() - started, 3), dropped=chosen.dropped if chosen else 0,
            found=not_found is None, not_found=not_found,
            unverified_quotes=list(chosen.unverified) if chosen else [], relevance=relevance,
            quotes=list(quotes), withheld=withheld,
            reading=reading.reading if reading else text,
            evidence=citations(chosen.evidence, range(1, len(chosen.evidence) + 1)) if chosen else [],
            check=verdict.record() if verdict else {}, answer_span=reading.span if reading else None))
        return answer

    if not candidates or relevance is None or relevance < settings.min_relevance:
        answer = finish(None, not_found=UNRELATED)
    else:
        chosen, ranked = select_evidence(stages, question, query, candidates, name, budget)
        if not chosen.evidence:
            answer = finish(chosen, not_found=NO_EVIDENCE)
        else:
            quotes = quotes_from(ranked, chosen.evidence, settings.quotes)
            yield "quotes", with_locations(store, quotes)
            documents = {c.doc_id: c.document for c in candidates if c.document is not None}
            reading = read_answer(generator, stages.checker(), question, chosen.evidence, quotes, documents, settings,
                                  stages.config.generator.max_new_tokens)
            answer = finish(chosen, quotes, reading, reading.not_found)
    yield "answer", answer
    yield "done", answer


def ask(stages: Stages, question: str, selector: str | None = None, budget: int | None = None) -> Answer:
    """Answer `question` (see `Pipeline.ask`): the last event of `ask_events`."""
    answer = None
    for _, answer in ask_events(stages, question, selector, budget):
        pass
    return answer
