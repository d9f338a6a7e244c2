"""`longrag` command line: thin wrappers that parse, call Pipeline, and print."""
from __future__ import annotations

import functools
import json
import sqlite3
import sys
from pathlib import Path

import click

from .budget import MIN_BUDGET
from .config import load_config
from .errors import ConfigError, LongragError
from .encoders.transformer import token_counter
from .encoders.tuning import TuneSettings, tune_positions as run_tuning
from .evaluation.compare import compare as run_compare
from .evaluation.conditions import CONDITIONS, DEFAULT_CONDITIONS, parse_conditions
from .evaluation.datasets import BUILTIN_NAMES
from .evaluation.regression import rows_table, run_slice
from .evaluation.report import table
from .evaluation.suite import build_datasets
from .evaluation.ask_eval import evaluate_answers
from .evaluation.synthesize import STYLES, SynthesisSettings, synthesized_set
from .index import IndexStore, list_indexes, resolve_index_dir
from .documents.locations import blank_pages, location_notes
from .documents.pdf import ocr_summary
from .index.manifest import describe
from .pipeline import Pipeline, default_index_dir, index_root
from .reasoning import SELECTORS
from .server.command import serve_command
from .views import answer_lines, hit_lines, report_lines

INDEX_HELP = "Index name (under indexes/, or $LONGRAG_INDEXES) or a path to an index directory."
FLAGS = {"ask.budget": "--budget", "ask.selector": "--selector", "search.k": "-k"}  # setting → the flag that sets it


def _friendly(func):
    """User errors become one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LongragError as exc:
            click.echo(f"error: {exc if isinstance(exc, ConfigError) else _with_flags(str(exc))}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was changed; the previous index is intact", err=True)
            sys.exit(130)
        except (OSError, sqlite3.OperationalError) as exc:  # the disk, not the input (SQLite reports a full disk itself)
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"error: {getattr(exc, 'strerror', None) or exc}{where}; nothing was changed", err=True)
            sys.exit(2)

    return wrapper


def _with_flags(message: str) -> str:
    """Errors met while running name settings (ask.budget); where this command has a flag for one, name it too
    (a ConfigError names the key of the config file, and stays as it is)."""
    context = click.get_current_context(silent=True)
    offered = {flag for param in context.command.params for flag in param.opts} if context else set()
    for setting, flag in FLAGS.items():
        message = message.replace(setting, f"{flag} ({setting})") if flag in offered else message
    return message


def _pick_index(name: str | None, config) -> Path:
    root = index_root(config)
    if name:
        return resolve_index_dir(name, root)
    available = list_indexes(root)
    if len(available) == 1:
        return Path(root) / available[0]
    if not available:
        raise LongragError(f"no index in {root}/: build one with `longrag index DIR`")
    raise LongragError(f"several indexes in {root}/ ({', '.join(available)}): choose one with --index NAME")


def _open(index_name: str | None, config_path: Path | None) -> Pipeline:
    """The pipeline over the chosen index, with the settings of --config when given (else the defaults)."""
    config = load_config(config_path)
    return Pipeline.load(_pick_index(index_name, config), config=config_path and config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="longrag")
def main():
    """longrag: retrieval over whole long documents (contracts, reports, transcripts, books).

    \b
    Typical use:
      longrag index ./contracts                 # build or update indexes/contracts
      longrag search "termination for patent suits"
      longrag info
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--index", "index_name", help=INDEX_HELP + " Default: the first folder's name.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML settings (see configs/default.yaml).")
@click.option("--rebuild", is_flag=True, help="Re-encode everything (needed after changing encoder settings).")
@click.option("--add", is_flag=True, help="Only add or update the files under PATHS; keep indexed documents that are "
              "not among them (by default the index holds exactly PATHS).")
@click.option("--optimize", is_flag=True, help="Merge the index's shards into one, dropping removed documents for "
              "good (with PATHS: after indexing them).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--wait", is_flag=True, help="If another process is writing this index, wait for it instead of failing.")
@click.option("--follow-links", is_flag=True, help="Read links that lead outside the indexed folders (skipped and listed by default).")
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Encode on a Ray cluster: auto (the cluster this "
              "machine belongs to), ray://HOST:10001, or local (start one here). Needs the `ray` extra.")
@_friendly
def index(paths, index_name, config_path, rebuild, add, optimize, quiet, wait, follow_links, ray_address):
    """Index the supported files (.txt .md .html .pdf .docx) under PATHS.

    Incremental: unchanged files are not re-encoded, changed ones are replaced, deleted ones
    removed; only what changed is written (a new shard; merged with others in the background of
    later runs, or at once with --optimize). An interrupted run leaves the previous index
    untouched. --index must name an index, an empty folder or a new path: any other folder or
    file is refused, never overwritten.

    \b
      longrag index ./contracts                       # build or update indexes/contracts
      longrag index ./contracts/new --index contracts --add
      longrag index --index contracts --optimize      # merge shards
    """
    config = load_config(config_path)
    if not paths and not optimize:
        raise LongragError("give the files or folders to index (or --optimize with --index to merge an index's shards)")
    if not paths:
        _print_report(Pipeline(config).optimize(_pick_index(index_name, config), wait=wait))
        return
    target = resolve_index_dir(index_name, index_root(config)) if index_name else default_index_dir(paths, config)
    pipe = Pipeline(config)
    report = pipe.index(paths, index_dir=target, rebuild=rebuild, progress=not quiet, wait=wait,
                        follow_links=follow_links, add=add, ray=ray_address)
    _print_report(report)
    if optimize:
        _print_report(pipe.optimize(target, wait=wait))


@main.command()
@click.argument("doc_ids", nargs=-1, required=True)
@click.option("--index", "index_name", help=INDEX_HELP)
@click.option("--wait", is_flag=True, help="If another process is writing this index, wait for it instead of failing.")
@_friendly
def remove(doc_ids, index_name, wait):
    """Remove documents from an index by id (the path relative to the indexed folder, as `search` shows it).

    An id not in the index is an error and nothing is changed. Their rows are dropped for good by
    the next merge (`longrag index --index NAME --optimize`)."""
    config = load_config(None)
    _print_report(Pipeline(config).remove(doc_ids, _pick_index(index_name, config), wait=wait))


@main.command()
@click.argument("query")
@click.option("--index", "index_name", help=INDEX_HELP)
@click.option("-k", "k", type=click.IntRange(1, 1000), help="Documents to return (default: search.k, 10).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML settings; must match the index's encoder.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list, one object per hit: doc_id, path, score, start, end, snippet, sentence (the "
                   "span's best-matching sentence), page, pages, section (the sentence's; null where unknown).")
@click.option("--rerank", is_flag=True,
              help="Let the generator re-rank the best segments of the k documents (slower; scores become log p(yes)).")
@_friendly
def search(query, index_name, k, config_path, as_json, rerank):
    """Rank indexed documents for QUERY, each with its best-matching span.

    Spans are character offsets [start, end) into the document's extracted text. With --rerank the
    generator reads the top ask.candidates segments of those documents, judges each relevant or
    not, and documents are re-ordered by their best segment.
    """
    pipe = _open(index_name, config_path)
    hits = pipe.search(query, k=k, rerank=rerank)
    _note_locations(pipe)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo("no results")
    for line in hit_lines(hits):
        click.echo(line)


@main.command()
@click.argument("question")
@click.option("--index", "index_name", help=INDEX_HELP)
@click.option("--selector", type=click.Choice(SELECTORS),
              help="How evidence is picked inside the retrieved documents (default: ask.selector in the config).")
@click.option("--budget", type=click.IntRange(MIN_BUDGET), help="Evidence tokens (generator tokens) to answer from (default: ask.budget).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="YAML settings (generator and ask sections); must match the index's encoder.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: answer, answer_span{doc_id, path, start, end, text, page, pages, section}, quotes[{the same fields, block}], citations and evidence (the same), withheld, reading, check, grounded, selector, tokens_in, seconds, ...")
@_friendly
def ask(question, index_name, selector, budget, config_path, as_json):
    """Answer QUESTION from the indexed documents: first what they say, then a reading of it.

    First the quotes: the best sentences of the evidence for the question (chosen by the retriever
    from the question alone, never from the model's answer), verbatim, each with its document and
    character span [start:end). Then the answer: a yes/no question is answered Yes or No by the
    models' likelihood of each after reading the quotes; for any other question the generator
    points at the words of the quotes (and the sentences beside them) that answer it, and the
    answer is that span of the document, marked »…« inside its quote. A reading that aligns to no
    span, or that the checking model does not take to answer the question, is not shown as an
    answer: "No answer shown" says why, and the quotes stand. When the documents do not answer it
    says "not found in the indexed documents", and why.
    """
    pipe = _open(index_name, config_path)
    result = pipe.ask(question, selector=selector, budget=budget)
    _note_locations(pipe)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    for line, to_stderr in answer_lines(result, pipe.generator):
        click.echo(line, err=to_stderr)


@main.command()
@click.option("--index", "index_name", help=INDEX_HELP)
@_friendly
def info(index_name):
    """Describe an index: encoder, settings, counts, truncation, versions."""
    store = IndexStore(_pick_index(index_name, load_config(None)))
    for line in describe(store.path, store.manifest):
        click.echo(line)
    for note in location_notes(store):
        click.echo(f"  {note}")
    blank = blank_pages(store)
    if blank:
        click.echo(f"  pages without text (scans not read by OCR: see index.ocr): {'; '.join(blank[:10])}"
                   + (f"; and {len(blank) - 10} more documents" if len(blank) > 10 else ""))
    for line in ocr_summary(store):
        click.echo(f"  {line}")


def _print_report(report) -> None:
    for line in report_lines(report):
        click.echo(line)


def _note_locations(pipe) -> None:
    """Say once, on stderr, that some documents have no pages or sections yet."""
    for note in location_notes(pipe.store):
        click.echo(f"note: {note}", err=True)


@main.command()
@click.option("--dataset", "dataset_names",
              help="Comma-separated: qmsum, squality, cuad, passkey, needle, or a folder holding "
                   "queries.jsonl and qrels.tsv beside corpus.jsonl (BEIR) or beside your documents "
                   "(doc ids = paths relative to the folder).")
@click.option("--conditions", default=",".join(DEFAULT_CONDITIONS), show_default=True,
              help="Comma-separated condition names (see `longrag compare --list`) or config files (configs/pi.yaml).")
@click.option("--limit", type=click.IntRange(1), help="At most N queries per dataset (a quick run).")
@click.option("--lengths", default="256,512,1024,2048,4096,8192", show_default=True,
              help="Synthetic task lengths in tokens (up to 32768).")
@click.option("--docs", "n_docs", type=click.IntRange(2), default=50, show_default=True,
              help="Candidate documents per synthetic length.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/compare"), show_default=True,
              help="Where report.md, results.json and plots go; finished cells there are reused.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Base YAML settings (encoder etc.).")
@click.option("--data", "data_root", type=click.Path(path_type=Path), help="Data root (default ../shared/data or $LONGRAG_DATA).")
@click.option("--list", "list_only", is_flag=True, help="List the conditions and exit.")
@click.option("--synthesize", "n_questions", type=click.IntRange(1), metavar="N",
              help="First write N questions about the documents of --dataset FOLDER (a judged set under --out to "
                   "review; re-running continues it), then compare on them.")
@click.option("--seed", type=int, default=0, show_default=True, help="--synthesize: which passages are drawn.")
@click.option("--style", type=click.Choice(list(STYLES)), default="passage", show_default=True,
              help="--synthesize: write each question from its passage or from a one-sentence summary of it.")
@_friendly
def compare(dataset_names, conditions, limit, lengths, n_docs, out_dir, config_path, data_root, list_only,
            n_questions, seed, style):
    """Chunked vs whole-document retrieval, side by side, on one encoder and the same data.

    Writes report.md, results.json (every number with condition, dataset, encoder, versions,
    machine, date) and plots (quality vs document length, vs index size, vs encode time).
    """
    if list_only:
        for condition in CONDITIONS.values():
            click.echo(f"{condition.name:14} {condition.description}")
        return
    if not dataset_names:
        raise LongragError(f"--dataset is required: {', '.join(BUILTIN_NAMES)} or a dataset folder")
    config = load_config(config_path)
    chosen = parse_conditions(conditions)
    try:
        sizes = tuple(int(n) for n in lengths.split(","))
    except ValueError:
        raise LongragError(f"--lengths must be comma-separated integers, got {lengths!r}") from None
    if n_questions:
        datasets = [synthesized_set(dataset_names, out_dir, n_questions, config, SynthesisSettings(seed=seed, style=style),
                                    log=click.echo)]
        datasets = [d.limit(limit) for d in datasets] if limit else datasets
    else:
        datasets = build_datasets(dataset_names, limit=limit, lengths=sizes, n_docs=n_docs,
                                  count_tokens=token_counter(config.encoder), data_root=data_root)
    cells = run_compare(datasets, chosen, config, out_dir)
    click.echo(table(cells))
    click.echo(f"\nreport: {out_dir / 'report.md'}   results: {out_dir / 'results.json'}")


@main.command(name="eval")
@click.option("--slice", "slice_name", default="quick", show_default=True, help="Which slice of the regression file to run.")
@click.option("--file", "regression_file", type=click.Path(path_type=Path), default=Path("benchmarks/regression.yaml"),
              show_default=True, help="The regression matrix: condition → dataset → expected metric ± tolerance.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/eval"), show_default=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Base YAML settings.")
@click.option("--dataset", "dataset_dir", type=click.Path(path_type=Path),
              help="Instead: ask every question of this folder (from compare --synthesize) and grade the answers.")
@click.option("--index", "index_name", help="--dataset: " + INDEX_HELP + " Default: one built from the dataset.")
@click.option("--limit", type=click.IntRange(1), help="--dataset: at most N questions.")
@_friendly
def eval_(slice_name, regression_file, out_dir, config_path, dataset_dir, index_name, limit):
    """Run the regression matrix and print OK / FAIL per row (exit 1 if any row fails).

    With --dataset DIR: `ask` each question there, and count how often the quotes and the evidence
    hold the question's passage and how many answers are shown (answers kept in --out)."""
    if dataset_dir:
        config = load_config(config_path)
        index = resolve_index_dir(index_name, index_root(config)) if index_name else None
        summary = evaluate_answers(dataset_dir, config, out_dir / f"answers-{dataset_dir.name}", index, limit)
        click.echo("\n".join(summary.lines()))
        return
    rows = run_slice(regression_file, slice_name, load_config(config_path), out_dir / slice_name)
    click.echo(rows_table(rows))
    failed = [r for r in rows if not r.ok]
    click.echo(f"\n{len(rows) - len(failed)} OK, {len(failed)} FAIL")
    if failed:
        sys.exit(1)


@main.command(name="tune-positions")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--base", default="all-MiniLM-L6-v2", show_default=True,
              help="Base encoder (packaged name, local folder) with learned absolute positions.")
@click.option("--length", type=click.IntRange(514, 131072), default=8192, show_default=True,
              help="Extended length in tokens (special tokens included).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Where the tuned model folder goes (default: the cache, encoders/<base>-pos<length>).")
@click.option("--steps", type=click.IntRange(1), default=200, show_default=True, help="Training steps.")
@click.option("--batch-docs", type=click.IntRange(2), default=8, show_default=True, help="Documents per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--objective", type=click.Choice(["retrieve", "distill"]), default="retrieve", show_default=True,
              help="retrieve: the document's passages (original model) must find its vector among the batch; "
                   "distill: match the original model's vector of the same short text.")
@click.option("--input-tokens", type=click.IntRange(32), default=2048, show_default=True,
              help="Content tokens per training input (retrieve; distill is capped at the base window).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_friendly
def tune_positions(folder, base, length, out_dir, steps, batch_docs, lr, objective, input_tokens, seed, quiet):
    """Tune the extended (PI) position table of an encoder on the documents in FOLDER.

    Only the new position rows train (PoSE-style shifted positions on inputs shorter than --length,
    self-supervised: no labels). The defaults are the measured recipe (docs/results.md, "Position tuning":
    MiniLM to 8192 on 50 documents in ~35 min on 2 cores; SQuALITY +6.3 nDCG@10 over untuned PI).
    Resumes from its checkpoint when rerun with the same settings. Prints the gain on held-out
    documents; use the result with `encoder.model: <out>`, `document_method: pi`, `target_length: <length>`.
    """
    settings = TuneSettings(base=base, length=length, steps=steps, batch_docs=batch_docs, lr=lr, seed=seed,
                            objective=objective, input_tokens=input_tokens)
    report = run_tuning(folder, settings, out_dir, progress=not quiet, log=click.echo)
    click.echo(f"Tuned {base} to {length} tokens in {report.seconds:.0f} s ({report.steps} steps, "
               f"{report.train_documents} documents; {report.heldout_documents} held out)")
    click.echo("  held-out passage → own document:")
    for name, metrics in (("truncate (original)", report.truncate), ("PI untuned", report.before),
                          ("PI tuned", report.after)):
        click.echo(f"    {name:20} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    click.echo(f"  saved to {report.out}")
    click.echo(f"  use it: encoder: {{model: {report.out}, document_method: pi, target_length: {length}}}")


main.add_command(serve_command(INDEX_HELP, _open, _friendly))  # longrag/server/command.py

if __name__ == "__main__":
    main()
