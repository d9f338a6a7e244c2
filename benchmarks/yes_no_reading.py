"""Yes/no questions whose quotes hold no deciding clause: does the answerability gate (the checker's
"do the quotes answer the question?") keep them from a wrong "No", and what does it cost?

Re-reads the quotes a trust run saved (benchmarks/results/trust.json; no retrieval), asks the
checker the gate's question over them, and prints, per threshold, how many yes/no answers would
be shown and how many of those are right (the run's own Yes/No reading, withheld when unsure).

    .venv/bin/python benchmarks/yes_no_reading.py --run pointing --split dev
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

GATE = OUT.parent / "yes_no_gate.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="pointing")
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    parser.add_argument("--unsure", type=float, default=0.5)
    args = parser.parse_args()

    from longrag.config import load_config, with_overrides
    from longrag.pipeline import _load_generator
    from longrag.reasoning.verdict import answerability
    from longrag.types import Citation

    results = json.loads(OUT.read_text())
    rows = results["runs"][args.run]["rows"]
    config = load_config(None)
    checker = _load_generator(with_overrides(config, generator={"model": config.ask.checker}))
    cases = []
    for q in load_questions(args.split):
        row = rows.get(q["id"])
        if not row or not row["quotes"] or (row.get("check") or {}).get("method") != "yes/no likelihood":
            continue
        quotes = [Citation(c["doc_id"], c["doc_id"], c["start"], c["end"], c["text"], i + 1)
                  for i, c in enumerate(row["quotes"])]
        gate = answerability(checker, q["question"], quotes)
        margin = row["check"]["margin"]
        said = "yes" if margin > 0 else "no"
        cases.append((q, gate, margin, said, row["grade"].get("quote_hit")))
        print(f"{q['id']} gold={q['polarity']} said={said} margin={margin:+.2f} gate={gate:+.2f} "
              f"quote_hit={row['grade'].get('quote_hit')} {q['question'][:70]}", flush=True)
    print("\nthreshold | shown right wrong (of yes/no questions)")
    for threshold in (None, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0):
        shown = [(q, said) for q, gate, margin, said, _ in cases
                 if abs(margin) >= args.unsure and (threshold is None or gate >= threshold)]
        right = sum(said == q["polarity"] for q, said in shown)
        print(f"{threshold!s:9} | {len(shown):3} {right:3} {len(shown) - right:3} (of {len(cases)})")
    saved = json.loads(GATE.read_text()) if GATE.exists() else {}
    saved[f"{args.run}/{args.split}"] = [{"id": q["id"], "gold": q["polarity"], "margin": margin, "gate": gate,
                                          "quote_hit": hit} for q, gate, margin, _, hit in cases]
    GATE.write_text(json.dumps(saved, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
