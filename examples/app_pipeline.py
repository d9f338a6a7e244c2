"""Index a folder and search it from Python through `longrag.Pipeline`, with citations.

    .venv/bin/python examples/app_pipeline.py [FOLDER] [--index DIR]

FOLDER defaults to examples/contracts; `--ask` also answers the first question through
`Pipeline.ask` with the packaged SmolLM2 generator, citing the spans it read. The index goes to a temporary directory (deleted at the
end) unless --index DIR names one to keep; run again with the same DIR and unchanged files are
not re-encoded. Every hit is printed as `path:start-end` followed by the quoted span, which is
exactly `text[start:end]` of the document longrag extracted from that file.
"""
from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

from longrag import Pipeline

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    "what happens to my patent licence if I sue a contributor",
    "may I use the authors' names to endorse my product",
    "do I have to publish my changes if I only run the software as a network service",
]


def show(pipe: Pipeline, question: str, k: int = 3) -> None:
    """Print the top-k documents for a question: score, citation and the quoted span."""
    print(f"\nQ: {question}")
    for rank, hit in enumerate(pipe.search(question, k=k), 1):
        _, span = pipe.store.span_text(hit.doc_id, hit.start, hit.end)  # the whole span, not the snippet
        quote = " ".join(span.split())
        quote = quote if len(quote) <= 300 else quote[:299].rsplit(" ", 1)[0] + " …"
        print(f"{rank}. {hit.score:.3f}  {cite(hit.path)}:{hit.start}-{hit.end}  ({hit.end - hit.start} chars)")
        print(textwrap.indent(textwrap.fill(f'"{quote}"', 96), "     "))


def cite(path: str) -> str:
    """The path relative to the working directory when it is below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def main() -> None:
    """Index FOLDER, then answer QUESTIONS from a freshly loaded Pipeline (as an app would)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(HERE / "contracts"))
    parser.add_argument("--index", help="index directory to keep (default: a temporary one)")
    parser.add_argument("--ask", action="store_true",
                        help="also answer the first question with the packaged generator (Pipeline.ask)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="longrag-") as tmp:
        index_dir = Path(args.index) if args.index else Path(tmp) / "index"
        report = Pipeline.from_config(None).index([args.folder], index_dir=index_dir, progress=False)
        print(f"indexed {report.documents} documents ({report.segments} segments, {report.tokens:,} tokens; "
              f"{report.added} added, {report.unchanged} unchanged) into {index_dir} in {report.seconds:.1f} s")

        pipe = Pipeline.load(index_dir)  # what a long-running app does once at start-up
        for question in QUESTIONS:
            show(pipe, question)
        if args.ask:
            answer = pipe.ask(QUESTIONS[0], budget=1024)
            print(f"\nA ({answer.selector}, {answer.tokens_in} prompt tokens, {answer.seconds:.1f} s): {answer.answer}")
            for n, c in enumerate(answer.citations, 1):
                print(f"  [{n}] {cite(c.path)}:{c.start}-{c.end}")


if __name__ == "__main__":
    main()
