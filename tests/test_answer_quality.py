"""Report-only code of the generation benchmarks: the passkey README block, and the answer-quality metrics."""
from __future__ import annotations

import copy
import json
import sys

import pytest

from longrag.evaluation.answer_metrics import clean_answer, normalize, rouge_l, token_f1
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the report writers are benchmark code, not the package
from generation_reports import answer_quality_table, passkey_report  # noqa: E402
from readme_tables import replace_block  # noqa: E402

PASSKEY_JSON = REPO / "benchmarks" / "results" / "generator_passkey.json"


def _cell(method, length, accuracy, beyond=False, extension="none"):
    return {"method": method, "length": length, "accuracy": accuracy, "beyond_window": beyond,
            "extension": extension, "trials": [{"ok": True}] * 4}


def _result(cells):
    return {"model": "M", "trained_positions": 8192, "device": "cuda", "dtype": "auto", "trials": 4,
            "max_new_tokens": 10, "machine": "GPU box, 16 cores, Linux", "gpu": "H100",
            "versions": {"torch": "9.9"}, "date": "2001-02-03 04:05 UTC", "cells": cells}


def test_passkey_report_table_and_stamp_come_from_the_json():
    result = _result([_cell("none", 4096, 0.35), _cell("none", 16384, 0.0, beyond=True),
                      _cell("dynamic", 16384, 0.5, extension="dynamic, factor 2"),
                      _cell("dynamic", 4096, 0.35, extension="dynamic, factor 1"),
                      _cell("yarn", 4096, None, extension="yarn, factor 1"),
                      _cell("yarn", 16384, 0.05, extension="yarn, factor 2")])
    body = passkey_report(result)
    lines = body.splitlines()
    assert lines[0] == "| method | 4096 tok | 16384 tok |"
    assert "| none | 35 | 0† |" in lines
    assert "| dynamic | 35 | 50 |" in lines  # lengths sorted although measured out of order
    assert "| yarn | OOM | 5 |" in lines
    assert "dynamic: factor 1 / factor 2" in body
    assert "_Measured 2001-02-03 04:05 UTC on GPU box, 16 cores, Linux, H100 (bfloat16); torch 9.9._" in body
    assert "4 trials per cell" in body


def test_passkey_report_refuses_an_incomplete_grid():
    result = _result([_cell("none", 4096, 0.35), _cell("none", 8192, 0.2), _cell("dynamic", 4096, 0.35)])
    with pytest.raises(SystemExit, match="dynamic"):
        passkey_report(result)


def test_passkey_report_on_the_published_result(tmp_path):
    result = json.loads(PASSKEY_JSON.read_text())
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Ask\n\n<!-- generator-passkey:start -->\nold\n<!-- generator-passkey:end -->\n\nafter\n")
    replace_block("generator-passkey", passkey_report(copy.deepcopy(result)), readme)
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n")
    by_key = {(c["method"], c["length"]): c["accuracy"] for c in result["cells"]}
    row = "| dynamic | " + " | ".join(f"{100 * by_key[('dynamic', n)]:.0f}" for n in (4096, 8192, 16384, 32768)) + " |"
    assert row in text
    assert result["date"] in text and result["gpu"] in text


# ---- answer quality metrics ---------------------------------------------------------------------

@pytest.mark.parametrize("prediction, reference, expected", [
    ("The cat sat on the mat.", "a cat sat on mat", 1.0),  # articles, case and punctuation normalised away
    ("cat sat", "cat sat on mat", 2 * 1.0 * 0.5 / 1.5),  # precision 1, recall 1/2
    ("cat cat cat", "cat", 2 * (1 / 3) * 1.0 / (1 / 3 + 1)),  # repeated words count once per match
    ("dog", "cat", 0.0),
    ("", "cat", 0.0),
    ("", "", 1.0),
])
def test_token_f1_on_known_pairs(prediction, reference, expected):
    assert token_f1(prediction, reference) == pytest.approx(expected)


def test_normalize_and_clean_answer():
    assert normalize("  The Licensee's  RIGHTS, (a) an option!") == "licensees rights option"
    assert clean_answer("It ends [1] on termination [12].") == "It ends on termination ."


def test_rouge_l_takes_the_best_reference():
    # LCS "dog ran" against the second reference: P = 2/3, R = 2/4
    assert rouge_l("the dog ran", ["the cat sat", "a dog ran far"]) == pytest.approx(4 / 7)
    assert rouge_l("dogs running", ["the dog runs"]) > 0.7  # Porter stemming
    assert rouge_l("  ", ["anything"]) == 0.0


def test_answer_quality_table_means_and_counts():
    def cell(score, declined=False, gate=False, seconds=2.0, rss=900.0, support=None, quote=None):
        out = {"score": score, "declined": declined, "gate": gate, "tokens_in": 100, "seconds": seconds,
               "peak_rss_mb": rss}
        out = out if support is None else {**out, "score_with_support": support}
        return out if quote is None else {**out, "score_with_quote": quote}

    results = {"settings": {"budget": 2048, "max_new_tokens": 96, "min_relevance": 0.35, "generator": "G"},
               "versions": {"rouge-score": "0.1.2"},
               "records": {"cuad/a": {"dataset": "cuad", "first": cell(0.2), "hybrid": cell(0.6, support=0.8, quote=0.9)},
                           "cuad/b": {"dataset": "cuad", "first": cell(0.0, declined=True), "hybrid": cell(0.4, support=0.6, quote=0.5)},
                           "squality/c": {"dataset": "squality", "hybrid": cell(0.25, gate=True)},
                           "squality/d": {"dataset": "squality", "hybrid": cell(0.25, seconds=3.0, rss=950.0)},
                           "squality/e": {"dataset": "squality", "hybrid": cell(0.25, seconds=100.0)}},
               "human": {"squality": {"score": 0.221, "n": 3, "responses": 12}}}
    lines = answer_quality_table(results).splitlines()
    # "with support" / "with quote": the same mean with that sentence appended; "–" where a run did not score it
    assert "| cuad | first | 2 | token F1 10.0 | – | – | 50% | 0% | 100 | 2.0 / 2.0 | 900 |" in lines
    assert "| cuad | hybrid | 2 | token F1 50.0 | 70.0 | 70.0 | 0% | 0% | 100 | 2.0 / 2.0 | 900 |" in lines
    # seconds: the median (a stall does not dominate) and the 90th percentile (numpy's, interpolated:
    # 3 + 0.8 × 97 = 80.6, which shows the stall); RSS: the highest peak
    assert "| squality | hybrid | 3 | ROUGE-L 25.0 | – | – | 0% | 33% | 100 | 3.0 / 80.6 | 950 |" in lines
    # the human reference row: each reference against the others, no answer columns
    assert "| squality | a human reference | 3 | ROUGE-L 22.1 | – | – | – | – | – | – | – |" in lines
    assert lines.index("| squality | a human reference | 3 | ROUGE-L 22.1 | – | – | – | – | – | – | – |") > \
        lines.index("| squality | hybrid | 3 | ROUGE-L 25.0 | – | – | 0% | 33% | 100 | 3.0 / 80.6 | 950 |")
    assert not any("| embedding |" in line for line in lines)  # not measured: no row
    # the stamp saved when the benchmark ran is kept by a later rewrite of the table
    assert answer_quality_table({**results, "stamp": "_Measured then, there._"}).endswith("_Measured then, there._")
