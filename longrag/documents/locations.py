"""Where a span lies in its document: its page(s) and its heading path.

Loaders record structure as character offsets into the text they extract, in the document's
metadata (stored with it in the index):

- `page_starts`: the offset where each page's text begins (PDF; page 1 first). A page without
  extractable text keeps its place, so the pages after it keep their numbers;
- `pages_without_text`: those pages' numbers;
- `headings`: [start, level, title] in order (Markdown, HTML, DOCX heading styles, numbered
  clauses of plain text); the section of a position is the path of headings above it;
- `locations`: LOCATIONS_VERSION, saying the loader recorded the above (absent in documents
  indexed before locations were: those are re-read by the next `longrag index`).

`locate` turns a span into {page, pages, section}; `with_locations` attaches that to hits and
citations, the one place that does.
"""
from __future__ import annotations

import bisect
import json
import re
from dataclasses import replace
from typing import Any, Iterable, Sequence

LOCATIONS_VERSION = 1

# "6. Trademarks.", "1.1. “Contributor” means …", "3.2 When the Program …": a number at a line's start
# (components below 1000, so years and amounts are not clauses), then a capital or a quote; a lone
# number needs its dot ("51 Franklin Street" is an address, not clause 51), which may touch the title
# ("15.Applicable Law", as the EUPL writes it)
_CLAUSE = re.compile(r"^[ \t]{0,4}((?:\d{1,3}\.)+\d{1,3}(?:\.[ \t]*|[ \t]+)|\d{1,3}\.[ \t]*)(?=[A-Z\"“‘'(])(.+)$", re.M)
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
TITLE_CHARS = 80  # a clause title longer than this is cut at a word and marked …


def short_title(text: str) -> str:
    """A heading's title on one line: whitespace squashed; a long first sentence cut at a word."""
    text = " ".join(text.split())
    sentence = re.match(r"(.+?[.:])(\s|$)", text)
    if sentence and len(sentence.group(1)) <= TITLE_CHARS:
        return sentence.group(1)
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def numbered_clauses(text: str) -> list[list]:
    """Headings of plain text: lines opening with a clause number ("6. Trademarks. This License …"
    → level 1 "6. Trademarks."; "1.1. …" → level 2). Numbers must not go backwards at their level
    (a list restarting at 1 inside clause 4 is not a new clause 1)."""
    out, last = [], {}
    for match in _CLAUSE.finditer(text):
        number = match.group(1).strip().rstrip(".")
        parts = [int(p) for p in number.split(".")]
        level = len(parts)
        previous = last.get(level)
        if previous is not None and parts[:-1] == previous[:-1] and parts[-1] <= previous[-1]:
            continue
        last = {k: v for k, v in last.items() if k < level} | {level: parts}
        written = text[match.start(1):match.start(2)].strip()  # "6." or "3.1", as the document writes it
        out.append([match.start(1), level, f"{written} {short_title(match.group(2))}"])
    return out


def markdown_headings(text: str) -> list[list]:
    """ATX (`## Title`) and setext (Title over === or ---) headings outside fenced code."""
    out, fenced, offset, previous = [], False, 0, None  # previous: (start, line) of the last text line
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if _FENCE.match(bare):
            fenced = not fenced
        elif not fenced:
            atx, setext = _ATX.match(bare), _SETEXT.match(bare)
            if atx:
                out.append([offset + len(bare) - len(bare.lstrip()), len(atx.group(1)), atx.group(2).strip()])
            elif setext and previous is not None and previous[1].strip():
                start, above = previous
                out.append([start + len(above) - len(above.lstrip()), 1 if setext.group(1)[0] == "=" else 2,
                            " ".join(above.split())])
        previous = (offset, bare) if bare.strip() and not fenced else None
        offset += len(line)
    return out


def heading_path(headings: Sequence[Sequence], position: int) -> tuple[str, ...]:
    """Titles of the headings enclosing `position`, outermost first."""
    stack: list[tuple[int, str]] = []
    for start, level, title in headings:
        if start > position:
            break
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
    return tuple(title for _, title in stack)


def page_range(page_starts: Sequence[int], start: int, end: int) -> tuple[int, ...]:
    """The 1-based pages a span [start, end) touches (its last character's page, not `end`'s)."""
    first = max(1, bisect.bisect_right(page_starts, start))
    last = max(first, bisect.bisect_right(page_starts, max(start, end - 1)))
    return tuple(range(first, last + 1))


def locate(metadata: dict, start: int, end: int) -> dict[str, Any]:
    """{page, pages, section} of a span, each only when the document records it: `page` is the
    first page, `pages` every page the span touches; `section` the heading path of the part
    holding most of the span (a segment may begin with the tail of the clause before)."""
    out: dict[str, Any] = {}
    if metadata.get("page_starts"):
        pages = page_range(metadata["page_starts"], start, end)
        out["page"], out["pages"] = pages[0], pages
    headings = metadata.get("headings")
    if headings:
        cuts = [start] + [h[0] for h in headings if start < h[0] < end] + [max(end, start + 1)]
        widest = max(range(len(cuts) - 1), key=lambda i: cuts[i + 1] - cuts[i])  # the first of equals
        path = heading_path(headings, cuts[widest])
        if path:
            out["section"] = path
    return out


def missing(metadata: dict) -> bool:
    """A document read from a file (the loader's `format` and `bytes`) before loaders recorded
    locations: its next `longrag index` run re-reads it."""
    return "format" in metadata and "bytes" in metadata and "locations" not in metadata


def with_locations(store, spans: Iterable, cache: dict[str, dict] | None = None) -> list:
    """The spans (Hits, Citations: anything with doc_id, start, end and the location fields) with
    page, pages and section filled in from their documents' stored metadata (read once per
    document into `cache`): those of a hit's matched `sentence` where it has one."""
    cache = {} if cache is None else cache
    out = []
    for span in spans:
        if span.doc_id not in cache:
            cache[span.doc_id] = store.document_metadata(span.doc_id) if span.doc_id in store else {}
        where = getattr(span, "sentence", None) or (span.start, span.end)
        out.append(replace(span, **locate(cache[span.doc_id], *where)))
    return out


def answer_with_locations(store, answer):
    """An Answer whose quotes, citations, evidence and answer span carry their locations."""
    cache: dict[str, dict] = {}
    span = answer.answer_span and with_locations(store, [answer.answer_span], cache)[0]
    return replace(answer, answer_span=span, **{name: with_locations(store, getattr(answer, name), cache)
                                                for name in ("quotes", "citations", "evidence")})


def stale_documents(store) -> list[str]:
    """Ids of the store's documents indexed before locations were recorded (see `missing`)."""
    return [doc_id for doc_id, metadata in _metadata(store, lambda text: '"locations"' not in text) if missing(metadata)]


def _metadata(store, wanted) -> Iterable[tuple[str, dict]]:
    """(doc_id, metadata) of the store's live documents whose stored metadata text is `wanted`
    (a cheap test first: only those are parsed)."""
    for shard in store.shards:
        for ordinal, doc_id, metadata in shard.document_rows(columns=("doc_id", "metadata")):
            if shard.alive[ordinal] and wanted(metadata):
                yield doc_id, json.loads(metadata)


def location_notes(store) -> list[str]:
    """What a user should know about the index's locations: documents without them."""
    notes = []
    stale = stale_documents(store)
    if stale:
        notes.append(f"locations are missing for {len(stale)} documents (indexed before longrag recorded pages "
                     f"and sections): run `longrag index <their folders> --index {store.path}` again to add them")
    return notes


def blank_pages(store) -> list[str]:
    """'doc_id: pages 2, 5' for every document with pages that had no extractable text."""
    return [f"{doc_id}: page{'s' if len(pages) > 1 else ''} {', '.join(map(str, pages))}"
            for doc_id, metadata in _metadata(store, lambda text: '"pages_without_text"' in text)
            for pages in [metadata.get("pages_without_text")] if pages]


def shown(span) -> str:
    """'p. 3 · § 6. Trademarks.' for a span with locations ('' without)."""
    parts = []
    pages = getattr(span, "pages", None)
    if pages:
        parts.append(f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}–{pages[-1]}")
    if getattr(span, "section", None):
        parts.append("§ " + " › ".join(span.section))
    return " · ".join(parts)
