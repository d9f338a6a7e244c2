"""Questions written from a user's own documents: a judged set `longrag compare` runs like any other.

Passages are drawn across the documents and across positions inside each (passages.py); the
configured generator writes one question per passage; a question is kept only when it

- copies no run of COPY_WORDS consecutive words of its passage (else the generator is asked again,
  up to `tries` times, told which words it copied),
- is no near-duplicate of a question already kept (encoder cosine ≥ `duplicate_cosine`),
- is answered by its passage as the checker (`ask.checker`) reads it: log p(Yes) − log p(No) of
  "do the blocks answer the question?" ≥ `min_margin` (reasoning/verdict.py `answerability`).

The best passage of another document for the question (the encoder's pick among BM25's shortlist)
is read by the checker too when its cosine comes within `rival_cosine` of the question's own
passage's; a question it answers about as well (within `ambiguous_gap` of the own margin) is marked ambiguous: listed, not judged.
The result is a BEIR folder (`FILES`) with the passage spans beside it; every passage tried is
logged in progress.jsonl first, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..config import Config, load_config
from ..errors import InputError
from ..lexical import BM25
from ..reasoning.prompting import inert
from ..reasoning.verdict import answerability
from ..types import Citation
from .beir import folder_corpus, load_beir
from .question_folder import PROGRESS, append, open_folder, write_folder
from .passages import COPY_WORDS, MIN_PASSAGE_WORDS, Passage, copied_phrase, cut_passages, spread_order, words

QUESTION_SYSTEM = ("You write questions that people type into a search box. Read the passage and write one question "
                   "it answers: ask about a detail it states (a condition, a duty, a right, a time, a person, an "
                   "amount, a decision), in plain words of your own, not the passage's. Reply with the question only.")
# one worked example, as a turn of the conversation: without it the 0.5B generator asks "What is the X License?"
# or echoes the instructions; set inside the system prompt, it was copied as the question
_EXAMPLE = ("The tenant shall give the landlord written notice no less than sixty days before vacating the premises.",
            "How long before moving out must a renter tell the owner?")


def _example(label: str) -> list[dict]:
    return [{"role": "user", "content": f"{label}:\n{_EXAMPLE[0]}\n\nQuestion:"},
            {"role": "assistant", "content": _EXAMPLE[1]}]


SUMMARY_SYSTEM = ("Say what the passage states in one short sentence of your own words, without its phrases. "
                  "Reply with that sentence only.")
FROM_SUMMARY_SYSTEM = ("You write questions that people type into a search box. Write one question that the "
                       "statement answers, in plain words of your own, not the statement's. Reply with the question only.")


def _from_passage(generator, name: str, passage: Passage) -> list[dict]:
    specials = generator.special_tokens()
    return [{"role": "system", "content": QUESTION_SYSTEM}, *_example("Passage"),
            {"role": "user", "content": f"{name}Passage:\n{inert(passage.text.strip(), specials)}\n\nQuestion:"}]


def _from_summary(generator, name: str, passage: Passage) -> list[dict]:
    """The question is written from a one-sentence summary, never from the passage's own words."""
    summary = generator.chat([{"role": "system", "content": SUMMARY_SYSTEM},
                              {"role": "user", "content": inert(passage.text.strip(), generator.special_tokens())}],
                             max_new_tokens=60).strip().splitlines()
    statement = inert(summary[0] if summary else "", generator.special_tokens())
    return [{"role": "system", "content": FROM_SUMMARY_SYSTEM}, *_example("Statement"),
            {"role": "user", "content": f"{name}Statement:\n{statement}\n\nQuestion:"}]


# style → the first messages the generator answers with a question
STYLES: dict[str, Callable[[object, str, Passage], list[dict]]] = {"passage": _from_passage, "summary": _from_summary}


@dataclass(frozen=True)
class SynthesisSettings:
    seed: int = 0
    style: str = "passage"  # a key of STYLES: "summary" writes from a summary of the passage (less word overlap)
    min_margin: float = 0.5  # the checker's margin that the passage answers the question (as ask.answerable)
    ambiguous_gap: float = 1.0  # another document's passage within this of the question's own margin → ambiguous
    rival_cosine: float = 0.1  # the checker reads the best other document's passage when its cosine is within this of the own
    duplicate_cosine: float = 0.9
    tries: int = 3  # questions asked per passage while they copy it

    def __post_init__(self):
        if self.style not in STYLES:
            raise InputError(f"unknown question style {self.style!r}; valid: {', '.join(STYLES)}")
        if self.tries < 1:
            raise InputError(f"tries must be at least 1, got {self.tries}")


@dataclass
class SynthesisReport:
    folder: Path
    asked: int  # questions asked for
    written: int  # judged questions written (ambiguous ones not counted)
    ambiguous: int
    tried: int  # passages a question was written from
    rejected: dict[str, int] = field(default_factory=dict)  # reason → count
    seconds: float = 0.0  # this run's time (a resumed run counts only its own)
    short_documents: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # files of the folder that could not be read, with why

    @property
    def filter_rate(self) -> float:
        """Share of the passages tried whose question the filters rejected (ambiguous ones are kept)."""
        return sum(self.rejected.values()) / self.tried if self.tried else 0.0

    def lines(self) -> list[str]:
        """What a person reads after the run."""
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.rejected.items()) or "none"
        lines = [f"Wrote {self.written} questions to {self.folder} in {self.seconds:.0f} s ({self.ambiguous} more marked "
                 f"ambiguous, not judged; {self.tried} passages tried; rejected: {reasons})"]
        if self.written < self.asked:
            lines.append(f"  {self.asked} were asked for: every passage was tried, and the other questions were rejected")
        if self.short_documents:
            lines.append(f"  {len(self.short_documents)} documents shorter than one passage were not asked about: "
                         f"{', '.join(self.short_documents[:5])}")
        if self.unreadable:
            lines.append(f"  {len(self.unreadable)} files could not be read: {'; '.join(self.unreadable[:3])}")
        lines.append("  review or edit: queries.jsonl, qrels/test.tsv, passages.jsonl (each question's span), "
                     "rejected.jsonl (with reasons)")
        return lines


def synthesized_set(folder: str | Path, out: str | Path, n: int, config: Config, settings: SynthesisSettings,
                    log: Callable[[str], None] = print, progress: bool = True):
    """What `longrag compare --dataset FOLDER --synthesize N` compares on: the folder's questions,
    written (or continued) in `out`/<folder name>-questions, read back as a judged set."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"--synthesize writes questions about one folder of documents: {folder} is not a folder")
    report = synthesize(folder, Path(out) / f"{folder.resolve().name}-questions", n, config, settings, progress)
    for line in report.lines():
        log(line)
    if report.written == 0:
        raise InputError(f"no question passed the filters (see {report.folder / 'rejected.jsonl'}): nothing to compare on")
    dataset = load_beir(report.folder)
    # compare reuses finished cells by dataset name: more questions, or questions a person edited, are another set
    digest = hashlib.sha256(json.dumps([dataset.queries, dataset.qrels], sort_keys=True).encode()).hexdigest()[:6]
    return replace(dataset, name=f"{dataset.name}-{len(dataset.queries)}q-{digest}")


def synthesize(source: str | Path | dict[str, str], out: str | Path, n: int, config: Config | None = None,
               settings: SynthesisSettings = SynthesisSettings(), progress: bool = True, pipeline=None,
               titles: bool | None = None) -> SynthesisReport:
    """Write `n` judged questions about the documents of `source` (a folder `longrag index` reads, or
    {doc_id: text}) into the BEIR folder `out`. Re-running with the same documents and settings
    continues the earlier run (a larger `n` adds questions); other settings are refused.
    `pipeline`: a Pipeline whose generator, checker and encoder to use (default: `config`'s).
    `titles`: show each document's file name to the generator (default: for a folder)."""
    started = time.perf_counter()
    config = config or load_config(None)
    corpus, read = (dict(source), {}) if isinstance(source, dict) else folder_corpus(Path(source).expanduser())
    titles = not isinstance(source, dict) if titles is None else titles
    by_doc = {doc_id: cut_passages(doc_id, text) for doc_id, text in sorted(corpus.items())}
    short = [doc_id for doc_id, items in by_doc.items() if not items]
    _check_sizes(corpus, by_doc, short, n)
    out = Path(out).expanduser()
    identity = _identity(corpus, config, settings)
    log = open_folder(out, identity)
    done = {r["passage"]: r for r in log}
    report = SynthesisReport(out, n, 0, 0, 0, short_documents=short, unreadable=read.get("unreadable_documents", []))
    state = _State(pipeline, config, settings, by_doc, titles)
    kept = [r for r in log if r["status"] in ("accepted", "ambiguous")]
    with tqdm(total=n, desc="questions", unit="question", disable=not progress) as bar:
        for passage in spread_order(by_doc, settings.seed):
            accepted = sum(r["status"] == "accepted" for r in kept)
            bar.n = min(accepted, n)
            bar.refresh()
            if accepted >= n:
                break
            record = done.get(passage.key)
            if record is None:
                record = state.process(passage, kept)
                append(out / PROGRESS, record)
                if record["status"] in ("accepted", "ambiguous"):
                    kept.append(record)
            bar.set_postfix(tried=len(done) + state.processed, refresh=False)
    records = list(done.values()) + state.new
    report.seconds = time.perf_counter() - started
    write_folder(out, corpus, records, kept[: _first_n(kept, n)], identity, report, short)
    return report


def _first_n(kept: list[dict], n: int) -> int:
    """How many of the kept records hold the first n accepted questions (with the ambiguous among them)."""
    count = 0
    for i, record in enumerate(kept, 1):
        count += record["status"] == "accepted"
        if count == n:
            return i
    return len(kept)


def _check_sizes(corpus: dict, by_doc: dict, short: list[str], n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"the number of questions must be a whole number ≥ 1, got {n!r}")
    if len(corpus) < 2:
        raise InputError(f"questions are written to choose between documents, and the folder holds {len(corpus)} "
                         f"({', '.join(corpus) or 'none'}): add at least one more document")
    usable = [d for d in corpus if d not in short]
    if len(usable) < 2:
        raise InputError(f"{len(short)} of the {len(corpus)} documents are shorter than one passage "
                         f"({MIN_PASSAGE_WORDS} words): {', '.join(short[:5])}; questions need at least two "
                         "documents of that length")
    available = sum(len(items) for items in by_doc.values())
    if n > available:
        raise InputError(f"{n} questions asked for, but the documents hold {available} passages (one question "
                         f"each, at most): use --synthesize {available} or fewer; nothing was written")


def _identity(corpus: dict, config: Config, settings: SynthesisSettings) -> dict:
    """What makes the questions what they are: a folder written with other values is not continued."""
    digest = hashlib.sha256()
    for doc_id in sorted(corpus):
        digest.update(f"{doc_id}\0{hashlib.sha256(corpus[doc_id].encode()).hexdigest()}\n".encode())
    return {"settings": asdict(settings), "generator": config.generator.model, "checker": config.ask.checker,
            "encoder": config.encoder.model, "documents": len(corpus), "corpus_sha256": digest.hexdigest(),
            "copy_words": COPY_WORDS, "rival_shortlist": RIVAL_SHORTLIST, "prompts": hashlib.sha256(json.dumps(
                [QUESTION_SYSTEM, _EXAMPLE, SUMMARY_SYSTEM, FROM_SUMMARY_SYSTEM]).encode()).hexdigest()[:12]}


RIVAL_SHORTLIST = 20  # other documents' passages, best by BM25, whose vectors are compared with the question's


class _State:
    """The models (loaded on first need) and the competing passages of a run."""

    def __init__(self, pipeline, config: Config, settings: SynthesisSettings, by_doc: dict, titles: bool):
        self._pipeline, self.config, self.settings, self.titles = pipeline, config, settings, titles
        self.pool = [p for items in by_doc.values() for p in items]
        self._where = {p.key: i for i, p in enumerate(self.pool)}
        self._bm25: BM25 | None = None
        self._vectors: dict[int, np.ndarray] = {}
        self.new: list[dict] = []
        self.processed = 0

    @property
    def pipe(self):
        if self._pipeline is None:
            from ..pipeline import Pipeline  # the evaluation package imports no pipeline until a model is needed

            self._pipeline = Pipeline(self.config)
        return self._pipeline

    def rival_shortlist(self, question: str, passage: Passage) -> list[int]:
        """Pool rows of other documents' passages worth encoding: BM25's best RIVAL_SHORTLIST for the
        question (encoding every passage of a large corpus costs minutes)."""
        if self._bm25 is None:
            self._bm25 = BM25.build([p.text for p in self.pool])
        _, rows = self._bm25.search(question, len(self.pool), drop_zero=False)
        return [int(r) for r in rows if self.pool[int(r)].doc_id != passage.doc_id][:RIVAL_SHORTLIST]

    def vectors(self, rows: list[int]) -> np.ndarray:
        """Passage vectors of these pool rows, each encoded once per run."""
        todo = [r for r in dict.fromkeys(rows) if r not in self._vectors]
        if todo:
            encoder = self.pipe.encoder
            ids = [encoder.tokenize(self.pool[r].text).ids[: encoder.segment_window] for r in todo]
            self._vectors.update(zip(todo, np.asarray(encoder.encode_ids(ids))))
        return np.stack([self._vectors[r] for r in rows])

    def process(self, passage: Passage, kept: list[dict]) -> dict:
        record = {"passage": passage.key, "doc_id": passage.doc_id, "start": passage.start, "end": passage.end}
        self.processed += 1
        wall, cpu = time.perf_counter(), time.process_time()  # CPU time of every thread: the cost under a shared CPU
        question, copied, tries = self.write_question(passage)
        record.update(question=question, tries=tries)
        if question is None:
            result = {"status": "rejected", "reason": "the generator wrote no question"}
        elif question == _EXAMPLE[1]:
            result = {"status": "rejected", "reason": "repeats the worked example"}
        elif copied:
            result = {"status": "rejected", "reason": f"copies the passage's words \"{copied}\""}
        else:
            result = self.judge(passage, question, kept)
        record.update(result, seconds=round(time.perf_counter() - wall, 2), cpu_seconds=round(time.process_time() - cpu, 2))
        self.new.append(record)
        return record

    def write_question(self, passage: Passage) -> tuple[str | None, str | None, int]:
        generator = self.pipe.generator
        name = f"Document: {Path(passage.doc_id).stem}\n\n" if self.titles else ""
        messages = STYLES[self.settings.style](generator, name, passage)
        question = copied = None
        for attempt in range(1, self.settings.tries + 1):
            question = as_question(generator.chat(messages, max_new_tokens=48))
            copied = copied_phrase(question, passage.text) if question else None
            if question is None or copied is None:
                return question, None, attempt
            messages = messages + [{"role": "assistant", "content": question},
                                   {"role": "user", "content": f"That question copies \"{copied}\" from the passage. "
                                                               "Ask the same thing in other words."}]
        return question, copied, self.settings.tries

    def judge(self, passage: Passage, question: str, kept: list[dict]) -> dict:
        settings, encoder, checker = self.settings, self.pipe.encoder, self.pipe.checker
        vector = encoder.encode_queries([question])[0]
        if kept:
            earlier = encoder.encode_queries([r["question"] for r in kept])
            similar = earlier @ vector
            best = int(np.argmax(similar))
            if similar[best] >= settings.duplicate_cosine:
                return {"status": "rejected", "reason": f"near-duplicate of \"{kept[best]['question']}\" "
                                                        f"(cosine {similar[best]:.2f})"}
        margin = answerability(checker, question, [_citation(passage)])
        if margin < settings.min_margin:
            return {"status": "rejected", "reason": f"the checker does not find the answer in the passage "
                                                    f"(margin {margin:+.2f})", "margin": margin}
        rows = [self._where[passage.key], *self.rival_shortlist(question, passage)]
        scores = self.vectors(rows) @ vector
        best = 1 + int(np.argmax(scores[1:]))
        rival, own = self.pool[rows[best]], float(scores[0])
        rival_record = {"doc_id": rival.doc_id, "start": rival.start, "end": rival.end,
                        "cosine": round(float(scores[best]), 3), "own_cosine": round(own, 3)}
        if scores[best] < own - settings.rival_cosine:  # the encoder finds no close rival: the checker is not asked
            return {"status": "accepted", "margin": round(margin, 3), "rival": rival_record}
        rival_margin = answerability(checker, question, [_citation(rival)])
        rival_record["margin"] = round(rival_margin, 3)
        ambiguous = rival_margin >= settings.min_margin and rival_margin >= margin - settings.ambiguous_gap
        return {"status": "ambiguous" if ambiguous else "accepted", "margin": round(margin, 3), "rival": rival_record}


def _citation(passage: Passage) -> Citation:
    return Citation(passage.doc_id, passage.doc_id, passage.start, passage.end, passage.text, 1)


_LEAD = re.compile(r"^\s*(?:\*\*)?(?:question\s*\d*\s*[:.\-]|q\s*[:.]|\d+\s*[.)])\s*", re.I)


def as_question(reply: str) -> str | None:
    """The question in a generator's reply: its first line, without a "Question:" lead or quotes,
    up to its question mark; None when it holds no question of at least three words."""
    line = next((line.strip() for line in reply.strip().splitlines() if line.strip()), "")
    line = _LEAD.sub("", line).strip(" \"'*`")
    if "?" not in line:
        return None
    line = line[: line.index("?") + 1].strip(" \"'*`")
    return line if len(words(line)) >= 3 else None


