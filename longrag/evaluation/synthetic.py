"""LongEmbed-style synthetic retrieval (passkey, needle) over real prose, at fixed token lengths.

Each of `n_docs` candidate documents is ~`length` tokens of SQuALITY *train* stories (the dev
stories are the real SQuALITY task) with one inserted sentence at a random sentence boundary;
each query asks about one document's sentence. Haystacks start at a different story and offset
per document and continue through the other stories in a per-document order, so documents
differ in their prose and only the inserted sentence tells the right one apart. Everything is
drawn from one seeded generator: same arguments, same dataset.
"""
from __future__ import annotations

import bisect
import functools
import json
import random
import re
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .data_files import data_file
from .retrieval_dataset import RetrievalDataset

LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
TOLERANCE = 0.05  # documents are kept within ±5% of the target length
_AIM = 0.02  # try for ±2% so a tokenizer's wobble between calls still lands inside ±5%
_MAX_COUNTS = 6  # count_tokens calls per document at most

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """Tokens ≈ 1.3 × whitespace words: the default when no tokenizer is supplied."""
    return round(len(text.split()) * 1.3)


# Pools of names and needle facts. Names that occur as words in the haystack are removed at load.
_FIRST_NAMES = """Aaliyah Abigail Adrian Aisha Alejandro Amara Anders Anika Arjun Astrid Beatrix Benedikt
Bianca Bodhi Camila Caspian Celine Chiara Cyrus Dalia Damian Dariusz Delphine Dmitri Elif Eloise Emeka
Esme Farah Felipe Fiona Florian Gabriela Greta Gideon Hana Hamza Haruki Helga Ibrahim Ines Isolde Ivana
Jasper Javier Jovana Kaito Kalinda Keanu Kira Lars Leilani Lorenzo Lucia Mateo Matilda Mei Milan Mira
Nadia Nikolai Noor Odette Olumide Orla Pablo Paloma Priya Quentin Rafael Ramona Rashid Renata Rohan Rosalind
Saanvi Santiago Selma Seraphina Soren Stellan Svetlana Tamsin Thiago Tobias Ulla Valentina Vikram Wilhelmina
Xiomara Yara Yusuf Zainab Zara Zoltan Anouk Bruno Cosima Dorian Elodie Fatima Gustavo Henrike Idris Jolene
Kwame Leopold Marisol Nilufar Osvaldo Petra""".split()
_SURNAMES = """Abernathy Achterberg Adeyemi Albescu Andersson Arbuthnot Bachmann Balogun Barzani Beaumont
Benedetti Bergqvist Blackwood Bonnaire Brennan Calloway Castellanos Chakraborty Cortazar Dabrowski Delacroix
Donnelly Dubois Eastwood Eriksen Esposito Falkenrath Fernsby Fitzgerald Gallagher Gonzaga Greenhalgh Grimaldi
Halvorsen Hargreaves Hashimoto Holmqvist Ibarra Iwasaki Jablonski Jaramillo Kaczmarek Kapoor Kettleborough
Kowalczyk Lachance Lindqvist Lombardi Mackintosh Magnusson Marchetti Montgomery Nakamura Nwachukwu Oakenshaw
Okonkwo Olivares Pemberton Petrovic Quintero Rasmussen Ravensworth Rosenthal Sandoval Schreiber Silvermane
Sorensen Takahashi Tennant Thistlewood Underhill Valdivia Vasquez Wainwright Whitlock Yamamoto Zielinski
Zubrowski Achebe Bettencourt Cavendish Dunleavy Etxeberria Fairbanks Gutierrez Holloway Ivanova Jorgensen
Kirkpatrick Lindgren Moreau Novak Ortega Pendleton Rutherford Satterthwaite Tolliver Umberger Villanueva
Westergaard Yilmaz Zamora Ashdown Brightwater Coldwell Drummond Ellingsen Farquhar Goldberg Hawthorne""".split()
_ADJECTIVES = """silver crimson ancient velvet copper emerald porcelain brass ivory cobalt amber jade
golden wooden crystal scarlet ebony marble bronze lacquered""".split()
_OBJECTS = ["compass", "violin", "pocket watch", "telescope", "music box", "chess set", "lantern",
            "hourglass", "globe", "typewriter", "harmonica", "kite", "teapot", "sextant", "fountain pen",
            "umbrella", "clock", "abacus", "gramophone", "paperweight"]
_CITIES = """Lisbon Nairobi Reykjavik Montevideo Krakow Osaka Tbilisi Marrakesh Valparaiso Helsinki Hanoi
Ljubljana Cartagena Zanzibar Edinburgh Tallinn Bergen Kyoto Quito Seville Porto Dubrovnik Winnipeg Adelaide
Salzburg Antwerp Bruges Cusco Tromso Lahore""".split()
_NEEDLES = (  # (sentence, question); the city is the answer
    ("The {adjective} {object} of {name} is kept in {city}.", "Where is the {adjective} {object} of {name} kept?"),
    ("{name} once hid a {adjective} {object} in a cellar in {city}.", "Where did {name} hide a {adjective} {object}?"),
    ("In {city}, {name} keeps a {adjective} {object} on the mantelpiece.",
     "In which city does {name} keep a {adjective} {object}?"),
)


@dataclass(frozen=True)
class _Story:
    sentences: tuple[str, ...]  # whitespace-normalised
    paragraph_end: tuple[bool, ...]  # sentence closes a paragraph (joined with a blank line)
    outside_quote: tuple[bool, ...]  # the boundary after the sentence is not inside a quotation


# A sentence ends at . (not after an initial, Mr, Mrs, Ms, Dr, St), or at ! or ? when the next
# sentence starts with a capital; "?" + closing quote ends one only when a new quotation follows,
# so that '"Who?" he asked.' stays whole.
_SENTENCE_END = re.compile(
    r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<![A-Z])\.[\"”’']?\s+(?=[\"“]?[A-Z])"
    r"|[!?]\s+(?=[\"“]?[A-Z])"
    r"|[!?][\"”]\s+(?=[\"“])")
_TRANSCRIBER_NOTE = re.compile(r"\[Transcriber's Note:.*?\]", re.S)


def _split_sentences(paragraph: str) -> list[str]:
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        end = match.start() + len(match.group().rstrip())
        sentences.append(paragraph[start:end])
        start = match.end()
    sentences.append(paragraph[start:])
    return [s for s in sentences if s]


@functools.lru_cache(maxsize=4)
def _haystack(path: str) -> tuple[tuple[_Story, ...], frozenset[str]]:
    """Stories split into sentences, without Gutenberg production notes; and the set of words
    they use (so that inserted names never occur in the prose)."""
    stories, vocabulary = [], set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            text = _TRANSCRIBER_NOTE.sub(" ", json.loads(line)["document"])
            sentences, ends, outside = [], [], []
            for paragraph in re.split(r"\n\s*\n", text):
                paragraph = " ".join(paragraph.split())
                if not paragraph or paragraph.startswith("Produced by"):
                    continue
                parts = _split_sentences(paragraph)
                sentences += parts
                ends += [False] * (len(parts) - 1) + [True]
                quotes = 0
                for part in parts[:-1]:
                    quotes += sum(part.count(q) for q in '"“”')
                    outside.append(quotes % 2 == 0)
                outside.append(True)
                vocabulary.update(re.findall(r"[A-Za-z]+", paragraph))
            stories.append(_Story(tuple(sentences), tuple(ends), tuple(outside)))
    return tuple(stories), frozenset(vocabulary)


class _Stream:
    """One document's haystack: sentences from a start offset onwards, through the stories in a
    per-document order, materialised lazily with cumulative word counts."""

    def __init__(self, stories: tuple[_Story, ...], order: list[int], offset: int):
        self._stories, self._order, self._offset = stories, order, offset
        self._next_story = 0
        self.sentences: list[str] = []
        self.paragraph_end: list[bool] = []
        self.outside_quote: list[bool] = []
        self.cumulative: list[int] = [0]  # words in the first k sentences

    def ensure(self, words: int) -> None:
        while self.cumulative[-1] < words:
            story = self._stories[self._order[self._next_story % len(self._order)]]
            first = self._offset if self._next_story == 0 else 0
            self._next_story += 1
            for sentence, end, outside in zip(story.sentences[first:], story.paragraph_end[first:],
                                              story.outside_quote[first:]):
                self.sentences.append(sentence)
                self.paragraph_end.append(end)
                self.outside_quote.append(outside)
                self.cumulative.append(self.cumulative[-1] + len(sentence.split()))
            self.paragraph_end[-1] = self.outside_quote[-1] = True  # a story ends a paragraph

    def compose(self, words: int, insert: str, depth: float, snap: int) -> tuple[str, int]:
        """`words` words of haystack (whole sentences when a sentence end is within `snap` words,
        else cut at a word) with `insert` placed at the sentence boundary nearest `depth` that is
        not inside a quotation by quote-mark parity (so it seldom interrupts someone's speech).
        Returns the text and the insert's character offset."""
        self.ensure(words + 1)
        full = bisect.bisect_right(self.cumulative, words) - 1  # whole sentences that fit
        remainder = words - self.cumulative[full]
        if remainder <= snap:
            remainder = 0
        elif self.cumulative[full + 1] - words <= snap:
            full, remainder = full + 1, 0
        units = [(self.sentences[i], "\n\n" if self.paragraph_end[i] else " ") for i in range(full)]
        if remainder:
            units.append((" ".join(self.sentences[full].split()[:remainder]), ""))
        boundary = self._boundary(round(depth * full), full)  # never after a cut sentence
        units.insert(boundary, (insert, " "))
        start = sum(len(text) + len(sep) for text, sep in units[:boundary])
        text = "".join(text + sep for text, sep in units[:-1]) + units[-1][0]
        return text, start

    def _boundary(self, wanted: int, full: int) -> int:
        """The allowed boundary nearest `wanted` in 0..full (0, before the first sentence, always is)."""
        for distance in range(full + 1):
            for b in (wanted - distance, wanted + distance):
                if 0 <= b <= full and (b == 0 or self.outside_quote[b - 1]):
                    return b
        return 0


_PUNCTUATION = re.compile(r"[^\w\s]")


def _units(text: str) -> int:
    """Words plus punctuation marks: a free proxy that tracks subword token counts closely."""
    return len(text.split()) + len(_PUNCTUATION.findall(text))


class _LengthFitter:
    """Finds how many haystack words make a document of `target` tokens with few count calls.

    Tokens per unit (word or punctuation mark) varies less between prose samples than tokens per
    word does, so the word count is first tuned for free against units × a ratio learnt from
    earlier documents; one real count then checks it, and a miss re-tunes with this document's own
    measured ratio.
    """

    def __init__(self, target: int, count_tokens: TokenCounter):
        self.target, self.count_tokens = target, count_tokens
        self.ratio: float | None = None  # tokens per unit, learnt from measured documents
        self.aim = max(1, round(_AIM * target))
        self.snap = int(0.01 * target / 1.3)  # words: end on a whole sentence when this close
        self.calls = 0

    def fit(self, stream: _Stream, insert: str, depth: float) -> tuple[str, int, int]:
        words = max(1, round(self.target / 1.3) - len(insert.split()))
        ratio, best = self.ratio, None
        for _ in range(_MAX_COUNTS):
            if ratio is not None:
                words = self._tune(stream, insert, depth, words, ratio)
            text, start = stream.compose(words, insert, depth, self.snap)
            tokens = self.count_tokens(text)
            self.calls += 1
            if best is None or abs(tokens - self.target) < abs(best[2] - self.target):
                best = (text, start, tokens)
            ratio = tokens / max(_units(text), 1)
            if abs(tokens - self.target) <= self.aim:
                break
        self.ratio = ratio if self.ratio is None else 0.7 * self.ratio + 0.3 * ratio
        if abs(best[2] - self.target) > TOLERANCE * self.target:
            raise RuntimeError(f"could not fit a document to {self.target} tokens (got {best[2]})")
        return best

    def _tune(self, stream: _Stream, insert: str, depth: float, words: int, ratio: float) -> int:
        """Adjust `words` until units × ratio predicts the target (no count_tokens calls)."""
        for _ in range(5):
            text, _ = stream.compose(words, insert, depth, self.snap)
            predicted = ratio * _units(text)
            if abs(predicted - self.target) <= self.aim / 2:
                break
            tokens_per_word = predicted / max(len(text.split()), 1)
            words = max(1, words + round((self.target - predicted) / tokens_per_word))
        return words


def _names(rng: random.Random, n: int, vocabulary: frozenset[str]) -> list[str]:
    """`n` distinct full names, with distinct first names while the pool lasts; none of the names'
    parts occurs in the haystack prose."""
    firsts = [name for name in _FIRST_NAMES if name not in vocabulary]
    lasts = [name for name in _SURNAMES if name not in vocabulary]
    rng.shuffle(firsts)
    rng.shuffle(lasts)
    f, l = len(firsts), len(lasts)
    most = f * (l // gcd(f + 1, l))  # (i % f, (i + i // f) % l) repeats after this many
    if n > most:
        raise InputError(f"at most {most} synthetic documents can get distinct names, asked for {n}")
    return [f"{firsts[i % f]} {lasts[(i + i // f) % l]}" for i in range(n)]


Fact = tuple[str, str, str]  # (inserted sentence, question, answer)


def _passkey_fact(rng: random.Random, name: str, key: int) -> Fact:
    insert = f"{name}'s pass key is {key}. Remember it. {key} is the pass key of {name}."
    return insert, f"What is the pass key of {name}?", str(key)


def _needle_fact(rng: random.Random, name: str, key: int) -> Fact:
    sentence, ask = rng.choice(_NEEDLES)
    fact = dict(name=name, adjective=rng.choice(_ADJECTIVES), object=rng.choice(_OBJECTS),
                city=rng.choice(_CITIES))
    return sentence.format(**fact), ask.format(**fact), fact["city"]


def _build(task: str, make_fact: Callable[[random.Random, str, int], Fact], length: int, n_docs: int,
           n_queries: int, seed: int, count_tokens: TokenCounter | None, root) -> RetrievalDataset:
    if length < 32:
        raise InputError(f"length must be at least 32 tokens, got {length}")
    if not 1 <= n_queries <= n_docs:
        raise InputError(f"need 1 <= n_queries <= n_docs, got n_queries={n_queries}, n_docs={n_docs}")
    count_tokens = count_tokens or estimate_tokens
    path = data_file(root, "squality/train.jsonl")
    stories, vocabulary = _haystack(str(path))
    set_name = dataset_name(task, length)
    rng = random.Random(f"{task}:{length}:{seed}")
    names = _names(rng, n_docs, vocabulary)
    fitter = _LengthFitter(length, count_tokens)
    starts = rng.sample([(s, o) for s, story in enumerate(stories) for o in range(len(story.sentences))], n_docs)
    keys = rng.sample(range(10000, 100000), n_docs)

    corpus, questions, answers, spans, tokens, depths = {}, {}, {}, {}, {}, {}
    for i, name in enumerate(names):
        doc_id = f"{set_name}-d{i:03d}"
        insert, question, answer = make_fact(rng, name, keys[i])
        story, offset = starts[i]
        others = [s for s in range(len(stories)) if s != story]
        rng.shuffle(others)
        stream = _Stream(stories, [story] + others, offset)
        text, start, n_tokens = fitter.fit(stream, insert, depth=rng.random())
        corpus[doc_id] = text
        questions[doc_id], answers[doc_id] = question, answer
        spans[doc_id] = (doc_id, start, start + len(insert))
        tokens[doc_id], depths[doc_id] = n_tokens, round(start / len(text), 4)

    targets = rng.sample(sorted(corpus), n_queries)
    queries, qrels, passages, query_answers = {}, {}, {}, {}
    for j, doc_id in enumerate(targets):
        qid = f"{set_name}-q{j:03d}"
        queries[qid], qrels[qid], passages[qid] = questions[doc_id], {doc_id: 1}, [spans[doc_id]]
        query_answers[qid] = answers[doc_id]
    meta = {"task": task, "length": length, "seed": seed, "n_docs": n_docs, "haystack": str(path),
            "count_tokens": getattr(count_tokens, "__qualname__", repr(count_tokens)),
            "count_tokens_calls": fitter.calls, "doc_tokens": tokens, "insert_depth": depths,
            "answers": query_answers}
    return RetrievalDataset(set_name, corpus, queries, qrels, passages, meta).validate()


def passkey(length: int, n_docs: int = 100, n_queries: int = 50, seed: int = 0,
            count_tokens: TokenCounter | None = estimate_tokens, root: str | Path | None = None) -> RetrievalDataset:
    """Each document hides "{Name}'s pass key is {12345}. Remember it. {12345} is the pass key of
    {Name}."; the query "What is the pass key of {Name}?" must find that document."""
    return _build("passkey", _passkey_fact, length, n_docs, n_queries, seed, count_tokens, root)


def needle(length: int, n_docs: int = 100, n_queries: int = 50, seed: int = 0,
           count_tokens: TokenCounter | None = estimate_tokens, root: str | Path | None = None) -> RetrievalDataset:
    """Each document hides one templated fact ("The silver compass of {Name} is kept in Lisbon.");
    the query asks about it ("Where is the silver compass of {Name} kept?")."""
    return _build("needle", _needle_fact, length, n_docs, n_queries, seed, count_tokens, root)


# The synthetic tasks by name: each builds one dataset of `length`-token documents.
TASKS: dict[str, Callable[..., RetrievalDataset]] = {"passkey": passkey, "needle": needle}


def dataset_name(task: str, length: int) -> str:
    """The name a synthetic dataset carries, e.g. "passkey-4096"."""
    return f"{task}-{length}"


# Matches a synthetic dataset name; groups: the task and the length in tokens.
DATASET_NAME = re.compile(rf"^({'|'.join(map(re.escape, TASKS))})-(\d+)$")


def synthetic_suite(task: str, lengths=LENGTHS, n_docs: int = 100, n_queries: int = 50, seed: int = 0,
                    count_tokens: TokenCounter | None = estimate_tokens,
                    root: str | Path | None = None) -> dict[int, RetrievalDataset]:
    """{length: dataset} for one task over several lengths, each drawn independently from `seed`."""
    if task not in TASKS:
        raise InputError(f"unknown synthetic task {task!r}: use one of {', '.join(TASKS)}")
    return {length: TASKS[task](length, n_docs, n_queries, seed, count_tokens, root) for length in lengths}
