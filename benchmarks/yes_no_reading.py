"""How should a yes/no question be read from its quotes? Re-reads the quotes a trust run saved
(benchmarks/results/trust.json; no retrieval) and compares, on the same questions:

- sum: today's reading, the checker's plus the generator's log p(Yes) − log p(No), less `ask.lean`;
- calibrated: each reader's margin less its margin for the same question over a content-free block
  ("N/A"), the "contextual calibration" of Zhao et al., 2021 (Calibrate Before Use, ICML), which
  cancels a reader's lean per question instead of on average;
- contrast: each reader's margin less its margin for the negated question (written by the checker,
  asked to reverse the question's meaning), as measured by hand in issue #34;
- checker / generator alone;
- gate: the answerability margin ("do the quotes answer it?"), to keep a question whose quotes hold
  no deciding clause from a "No".

Prints, per method and `unsure` threshold, how many answers would be shown and how many are right;
saves every margin to benchmarks/results/yes_no_reading.json. Tune on dev, report test.

    .venv/bin/python benchmarks/yes_no_reading.py --run today --split all
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from trust import OUT, load_questions  # noqa: E402

SAVED = OUT.parent / "yes_no_reading.json"
NEGATE = ("Rewrite the user's yes/no question so that its answer is the opposite: if the true answer was Yes, "
          "the new question's true answer is No. Change as few words as possible. Reply with the question only.")


SHOTS = [("Can I copy the files?", "Am I forbidden to copy the files?"),
         ("Does the agreement require a written notice?", "Does the agreement not require a written notice?"),
         ("Did the committee approve the budget?", "Did the committee reject the budget?")]


def negate(generator, question: str) -> str:
    messages = [{"role": "system", "content": NEGATE}]
    for asked, negated in SHOTS:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": negated}]
    reply = generator.chat(messages + [{"role": "user", "content": question}], max_new_tokens=60).strip()
    return (reply.splitlines() or [""])[0]


def measure(args) -> dict:
    from longrag.config import load_config, with_overrides
    from longrag.pipeline import _load_generator
    from longrag.reasoning.verdict import answerability, yes_minus_no, yes_no_messages
    from longrag.types import Citation

    rows = json.loads(OUT.read_text())["runs"][args.run]["rows"]
    config = load_config(None)
    generator = _load_generator(config)
    checker = _load_generator(with_overrides(config, generator={"model": config.ask.checker}))
    blank = [Citation("none", "none", 0, 3, "N/A", 1)]
    saved = json.loads(SAVED.read_text()) if SAVED.exists() else {}
    for q in load_questions(args.split):
        row = rows.get(q["id"])
        if q["kind"] != "yesno" or not row or not row["quotes"] or q["id"] in saved:
            continue
        quotes = [Citation(c["doc_id"], c["doc_id"], c["start"], c["end"], c["text"], i + 1)
                  for i, c in enumerate(row["quotes"])]
        negated = negate(checker, q["question"])
        m = {"id": q["id"], "split": q["split"], "gold": q["polarity"], "negated": negated,
             "quote_hit": row["grade"].get("quote_hit"), "gate": answerability(checker, q["question"], quotes)}
        for name, reader in (("checker", checker), ("generator", generator)):
            m[name] = yes_minus_no(reader, yes_no_messages(reader, q["question"], quotes))
            m[f"{name}_blank"] = yes_minus_no(reader, yes_no_messages(reader, q["question"], blank))
            m[f"{name}_negated"] = yes_minus_no(reader, yes_no_messages(reader, negated, quotes))
        saved[q["id"]] = m
        print(json.dumps(m), flush=True)
        SAVED.write_text(json.dumps(saved, indent=1, ensure_ascii=False))
    return saved


METHODS = {
    "sum": lambda m, lean: m["checker"] + m["generator"] - lean,
    "calibrated": lambda m, lean: (m["checker"] - m["checker_blank"]) + (m["generator"] - m["generator_blank"]),
    "contrast": lambda m, lean: (m["checker"] - m["checker_negated"]) + (m["generator"] - m["generator_negated"]),
    "checker": lambda m, lean: m["checker"],
    "checker calibrated": lambda m, lean: m["checker"] - m["checker_blank"],
    "checker contrast": lambda m, lean: m["checker"] - m["checker_negated"],
}


def tally(cases: list[dict], score, lean: float, unsure: float, gate: float | None) -> tuple[int, int]:
    """(shown, right) of the cases read by `score`: a reading within ±unsure, or below the gate, is not shown."""
    shown = [(m, score(m, lean)) for m in cases if abs(score(m, lean)) >= unsure and (gate is None or m["gate"] >= gate)]
    return len(shown), sum(("yes" if s > 0 else "no") == m["gold"] for m, s in shown)


def table(saved: dict, split: str, lean: float) -> None:
    cases = [m for m in saved.values() if split == "all" or m["split"] == split]
    print(f"\n{split}: {len(cases)} yes/no questions | method unsure gate | shown right wrong")
    for name, score in METHODS.items():
        for unsure in (0.0, 0.5, 1.0, 1.5):
            for gate in (None, 0.0, 0.5):
                shown, right = tally(cases, score, lean, unsure, gate)
                print(f"{name:19} {unsure:3.1f} {gate!s:4} | {shown:3} {right:3} {shown - right:3}")


def markdown(saved: dict, lean: float, unsure: float = 0.5) -> str:
    """Per method, shown / right / wrong on each half at `unsure`, without and with the gate at 0.5."""
    rows = ["| reading | gate | dev: shown, right, wrong | test: shown, right, wrong |", "|---|---|---|---|"]
    for name, score in METHODS.items():
        for gate in (None, 0.5):
            cells = []
            for split in ("dev", "test"):
                cases = [m for m in saved.values() if m["split"] == split]
                shown, right = tally(cases, score, lean, unsure, gate)
                cells.append(f"{shown} of {len(cases)}, {right}, {shown - right}")
            rows.append(f"| {name} | {'off' if gate is None else f'≥ {gate}'} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="today")
    parser.add_argument("--split", default="all", choices=["dev", "test", "all"])
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    from longrag.config import load_config

    saved = json.loads(SAVED.read_text()) if args.table_only else measure(args)
    lean = load_config(None).ask.lean
    for split in ("dev", "test"):
        table(saved, split, lean)
    if args.table_only:  # the docs table keeps the stamp of the run that measured it
        return
    from readme_tables import RESULTS, replace_block, stamp
    from longrag.indexing import library_versions
    replace_block("yes-no-reading", f"{markdown(saved, lean)}\n\nAt `ask.unsure` 0.5 (a reading within ±0.5 is "
                  f"withheld). {stamp(library_versions())}", RESULTS)


if __name__ == "__main__":
    main()
