"""docs/results.md blocks of the generation benchmarks (passkey accuracy, answer quality), rendered from their saved results."""
from __future__ import annotations

import numpy as np

from readme_tables import markdown_table, stamp

ANSWER_QUALITY_METHODS = ("first", "embedding", "bm25", "hybrid", "xl3m", "pointing")  # row order of the answer-quality table


def passkey_table(cells: list[dict], methods: list[str], lengths: list[int]) -> str:
    """Accuracy % per method × length; † marks a run past the method's window."""
    by_key = {(c["method"], c["length"]): c for c in cells}
    rows = []
    for method in methods:
        row = [method]
        for length in lengths:
            cell = by_key[(method, length)]
            if cell["accuracy"] is None:
                row.append("OOM")
            else:
                row.append(f"{100 * cell['accuracy']:.0f}{'†' if cell['beyond_window'] else ''}")
        rows.append(row)
    return markdown_table(["method"] + [f"{n} tok" for n in lengths], rows)


def passkey_report(result: dict) -> str:
    """The docs/results.md block: accuracy table (methods and lengths in the order measured) and the stamp,
    whose machine, versions and date are those recorded in the json, not this machine's."""
    cells = result["cells"]
    methods = list(dict.fromkeys(c["method"] for c in cells))
    lengths = sorted({c["length"] for c in cells})
    missing = [(m, n) for m in methods for n in lengths if not any(c["method"] == m and c["length"] == n for c in cells)]
    if missing:
        raise SystemExit(f"incomplete results, missing cells: {missing}")
    by_key = {(c["method"], c["length"]): c for c in cells}
    settings = [f"{m}: " + " / ".join(by_key[(m, n)]["extension"].split(", ", 1)[-1].replace(", ", " ")
                                      for n in lengths)
                for m in methods if m != "none"]
    trials = result["trials"] if isinstance(result["trials"], int) else len(cells[0]["trials"])
    device = result.get("gpu") or result["device"]
    dtype = result["dtype"]
    if dtype == "auto":
        dtype = "bfloat16" if result["device"] == "cuda" else "float32"
    libs = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    return (passkey_table(cells, methods, lengths)
            + f"\n\nPasskey accuracy % of {result['model']} (trained positions {result['trained_positions']}), "
            f"{trials} trials per cell, the same seeded prompts for every method; greedy, "
            f"{result['max_new_tokens']} new tokens; † = run past the method's window."
            + (f" Settings per length ({', '.join(str(n) for n in lengths)}) — " + "; ".join(settings) + "."
               if settings else "")
            + f"\n\n_Measured {result['date']} on {result['machine']}, {device} ({dtype}); {libs}._")


def answer_quality_table(results: dict) -> str:
    """Per dataset × evidence selector: mean score, declined and gated shares, prompt tokens, median
    seconds and highest peak RSS, with the settings note and the stamp."""
    records = results["records"]
    settings = results.get("settings", {})
    rows = []
    for name, metric in (("cuad", "token F1"), ("squality", "ROUGE-L")):
        for method in ANSWER_QUALITY_METHODS:
            cells = [r[method] for r in records.values() if r["dataset"] == name and method in r]
            if not cells:
                continue
            supported = [c["score_with_support"] for c in cells if "score_with_support" in c]
            quoted = [c["score_with_quote"] for c in cells if "score_with_quote" in c]
            seconds = [c["seconds"] for c in cells]
            rows.append([name, method, len(cells), f"{metric} {100 * np.mean([c['score'] for c in cells]):.1f}",
                         f"{100 * np.mean(supported):.1f}" if len(supported) == len(cells) else "–",
                         f"{100 * np.mean(quoted):.1f}" if len(quoted) == len(cells) else "–",
                         f"{100 * np.mean([c['declined'] for c in cells]):.0f}%",
                         f"{100 * np.mean([c['gate'] for c in cells]):.0f}%",
                         f"{np.mean([c['tokens_in'] for c in cells]):.0f}",
                         f"{np.median(seconds):.1f} / {np.percentile(seconds, 90):.1f}",
                         f"{max(c['peak_rss_mb'] for c in cells):.0f}"])
            if method == "pointing":  # the same readings scored where they are withheld too
                read = [r["pointing_reading"] for r in records.values() if r["dataset"] == name and "pointing_reading" in r]
                rows.append([name, "pointing, every reading (withheld ones too)", len(read),
                             f"{metric} {100 * np.mean(read):.1f}"] + ["–"] * 7)
        if name in results.get("human", {}):
            human = results["human"][name]
            rows.append([name, "a human reference", human["n"], f"{metric} {100 * human['score']:.1f}"] + ["–"] * 7)
    header = ["dataset", "evidence", "questions", "score", "with support", "with quote", "declined", "gate would refuse", "prompt tokens",
              "s/question median / p90", "peak RSS MB"]
    body = markdown_table(header, rows)
    body += (f"\n\nScores ×100, mean over the questions (column `questions`; declined answers score 0). "
             f"Budget {settings.get('budget')} evidence tokens, {settings.get('generator')} answering greedily, at most "
             f"{settings.get('max_new_tokens')} new tokens; candidates = all segments of the question's own document; "
             f"`first` = the document's first segments up to the budget. With support = the same score of the answer "
             "followed by its support, the evidence sentence that best matches question + answer, which `longrag ask` shows "
             "under every answer (before quotes); with quote = the answer followed by the first quote `longrag ask` now "
             "prints above it (the best sentence for the question alone; the answers are those of the run that "
             "measured the support: same prompt, same greedy answer). Declined = the generator answered \"not found\"; "
             f"gate would refuse = best question–segment cosine below min_relevance {settings.get('min_relevance')} "
             "(recorded, not applied). A human reference = each reference response scored against the other "
             "references of its question (what a human writer scores on this metric). Seconds per question "
             "(selection + generation + support); peak RSS of the whole process, models included; 2 CPU cores. "
             "`pointing` = what `longrag ask` shows today over the hybrid evidence (`ask.read`, the gate, the span, "
             "the checks): the span pointed at, or nothing when it is withheld or not found (counted as declined).")
    stamps = [results.get("stamp") or stamp(results.get("versions", {}))]
    stamps += [f"`{methods}`: {line}" for methods, line in results.get("stamps", {}).items()]
    return body + "\n\n" + "\n".join(stamps)
