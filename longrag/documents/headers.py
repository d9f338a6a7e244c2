"""Contextual headers: a segment is encoded and BM25-counted after its document's name, title and
section path, so a segment from the middle of a licence still says which licence it is from
("Under the CDDL, …" finds the CDDL's clause). Its stored text and offsets stay the document's
own; only what the encoder reads and what BM25 counts change (`segmenter.headers`)."""
from __future__ import annotations

from pathlib import PurePath
from typing import Sequence

import numpy as np

from ..types import Document, Segment, TokenizedText
from .locations import locate

HEADER_TOKENS = 48  # the most encoder tokens a header takes ahead of a segment


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
