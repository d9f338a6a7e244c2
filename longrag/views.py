"""What the CLI prints for a person: an index run's report, search hits, and an answer with its
quotes, the answer's span marked »…« inside the quote that holds it. Lines only; the CLI echoes them."""
from __future__ import annotations

from typing import Iterator

from .documents.locations import shown
from .reasoning import NOT_FOUND
from .reasoning.evidence import squash


def where(span) -> str:
    """'  p. 3 · § 6. Trademarks.' beside a span, when its document records that."""
    return f"  {shown(span)}" if shown(span) else ""


def report_lines(report) -> Iterator[str]:
    yield f"Indexed {report.documents} documents into {report.index_dir} in {report.seconds:.1f} s"
    yield f"  {report.segments} segments, {report.tokens:,} tokens ({report.encoded_tokens:,} encoded this run)"
    yield f"  added {report.added}, updated {report.updated}, unchanged {report.unchanged}, removed {report.removed}"
    if report.windowed:
        yield (f"  {report.windowed} documents were longer than one encoder window and were read as "
               "several windows (nothing cut)")
    if report.truncated:
        yield (f"  TRUNCATED {len(report.truncated)} documents "
               f"({sum(n for _, n in report.truncated):,} tokens not indexed):")
        for doc_id, n in report.truncated[:10]:
            yield f"    {doc_id}: {n:,} tokens cut"
    if report.skipped:
        yield f"  skipped {len(report.skipped)} files:"
        for item in report.skipped:
            yield f"    {item.path}: {item.reason}"
    for note in report.notes:
        yield f"  note: {note}"


def hit_lines(hits) -> Iterator[str]:
    for rank, hit in enumerate(hits, 1):
        yield f"{rank:>2}. {hit.score:.3f}  {hit.doc_id}  [{hit.start}:{hit.end}]{where(hit)}"
        yield f"      {hit.snippet}"


def holds(outer, span) -> bool:
    return outer.doc_id == span.doc_id and outer.start <= span.start and span.end <= outer.end


def marked(quote, span, context: int | None = None) -> str:
    """The quote's text with the answer span between » and « when the quote holds it (and only
    `context` characters either side, when given)."""
    if not span or not holds(quote, span):
        return quote.text
    a, b = span.start - quote.start, span.end - quote.start
    lo, hi = (0, len(quote.text)) if context is None else (max(0, a - context), min(len(quote.text), b + context))
    return f"{quote.text[lo:a]}»{quote.text[a:b]}«{quote.text[b:hi]}"


def answer_lines(result, generator) -> Iterator[tuple[str, bool]]:
    """(line, to stderr) of an Answer: the quotes first, then the answer or why none is shown."""
    span = result.answer_span if result.grounded else None
    if result.quotes:
        yield "What the documents say:", False
        for quote in result.quotes:
            yield f"  [{quote.block}] {quote.doc_id} [{quote.start}:{quote.end}]{where(quote)}", False
            yield f"      \"{squash(marked(quote, span))}\"", False
    if span and not any(holds(q, span) for q in result.quotes):
        # the model pointed outside the printed quotes: its own sentence, marked as its choice
        around = next((c for c in result.citations if holds(c, span)), span)
        yield f"  [{around.block}] {span.doc_id} [{span.start}:{span.end}]{where(span)} (the model's choice)", False
        yield f"      \"…{squash(marked(around, span, context=160))}…\"", False
    if result.withheld:
        yield f"No answer shown: {result.withheld}.", False
        yield f"  (the model's reading was: {squash(result.reading)})", True
    elif span:
        yield f"Answer: »{squash(span.text)}«  ({span.doc_id} [{span.start}:{span.end}]{where(span)})", False
    elif result.found:
        yield f"Answer: {result.answer}", False
    else:
        yield f"Answer: {NOT_FOUND} ({result.not_found})", False
    relevance = f", relevance {result.relevance:.2f}" if result.relevance is not None else ""
    model = f"{generator.name} on {generator.backend}; " if result.tokens_in else ""
    check = f"; {result.check['method']} margin {result.check['margin']:+.2f}" if result.check.get("margin") is not None else ""
    yield (f"({result.selector}; {model}{result.tokens_in} prompt tokens; {result.dropped} left out of "
           f"the budget{relevance}{check}; {result.seconds:.1f} s)"), True
