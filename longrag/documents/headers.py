"""What a segment is, besides its text: its document's name and title, and its section headings.

Two uses. BM25 fields (lexical.py): `name_text` and `heading_texts` are what the index counts in a
segment's "name" and "heading" fields, so "Under the CDDL, …" meets the CDDL's clauses and "governing
law" the clause titled so, weighted at search time (`search.name_weight`, `search.heading_weight`).
Contextual headers (`segmenter.headers`): a segment is encoded and BM25-counted after its
document's name, title and section path. Either way the stored text and offsets stay the
document's own."""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Sequence

import numpy as np

from ..types import Document, Segment, TokenizedText
from .locations import locate

HEADER_TOKENS = 48  # the most encoder tokens a header takes ahead of a segment
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")  # CybergyHoldingsInc, ABCCorp
_NOT_WORD = re.compile(r"[_\W]+")
_NUMBER = re.compile(r"\b\d+\b")


def name_text(doc_id: str, metadata: dict) -> str:
    """The words a document is called by: its path under the indexed folder (folders and file
    name, without the suffix; CamelCase and snake_case split) and its title. Numbers are left out:
    versions, dates and ids ("cuad-dev-20", "20140520") would meet a question's amounts."""
    path = PurePath(doc_id)
    text = " ".join([*path.parent.parts, path.stem, metadata.get("title") or ""])
    return " ".join(_NUMBER.sub(" ", _NOT_WORD.sub(" ", _CAMEL.sub(" ", text))).split())


def heading_texts(headings, spans) -> list[str]:
    """For each [start, end) span, in document order: the titles of the headings it lies under
    (its section path at its start) and of those that begin inside it, one per line."""
    out, stack, i = [], [], 0
    for start, end in spans:
        while i < len(headings) and headings[i][0] <= start:
            _, level, title = headings[i]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            i += 1
        inside, j = [], i
        while j < len(headings) and headings[j][0] < end:
            inside.append(headings[j][2])
            j += 1
        out.append("\n".join([title for _, title in stack] + inside))
    return out


def field_texts(fields, doc_id: str, metadata: dict, spans) -> dict[str, list[str]]:
    """The texts of the named BM25 fields ("name", "heading") for each span of one document."""
    texts = {"name": lambda: [name_text(doc_id, metadata)] * len(spans),
             "heading": lambda: heading_texts(metadata.get("headings") or [], spans)}
    return {name: texts[name]() for name in fields}


def header_text(document: Document, start: int, end: int) -> str:
    """'CDDL-1.0 · <title>\\n1. Definitions. › 1.3. …\\n': the file name (as the sentence ranking
    names a document: reasoning/sentences.py title_of), its title when it records one, then the
    section of the span."""
    names = [PurePath(document.path).stem]
    title = document.metadata.get("title")
    if title and title != names[0]:
        names.append(title)
    section = locate(document.metadata, start, end).get("section")
    return " · ".join(names) + ("\n" + " › ".join(section) if section else "") + "\n"


def headed_ids(encoder, document: Document, tokens: TokenizedText,
               parts: Sequence[tuple[Segment, int, int]]) -> list[np.ndarray]:
    """Each segment's token ids with its header's ids in front, within the encoder's segment window."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for segment, a, b in parts:
        text = header_text(document, segment.start, segment.end)
        if text not in cache:
            cache[text] = encoder.tokenize(text).ids
        room = max(0, min(HEADER_TOKENS, encoder.segment_window - (b - a)))
        out.append(np.concatenate([cache[text][:room], tokens.ids[a:b]]).astype(np.int64))
    return out
