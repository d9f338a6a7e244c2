"""Report-only code of the generation benchmarks: the passkey README block, and the answer-quality metrics."""
from __future__ import annotations

import copy
import json
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import generator_passkey  # noqa: E402
import readme_tables  # noqa: E402

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
    body = generator_passkey.report(result)
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
        generator_passkey.report(result)


def test_passkey_report_on_the_published_result(tmp_path):
    result = json.loads(PASSKEY_JSON.read_text())
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Ask\n\n<!-- generator-passkey:start -->\nold\n<!-- generator-passkey:end -->\n\nafter\n")
    readme_tables.replace_block("generator-passkey", generator_passkey.report(copy.deepcopy(result)), readme)
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n")
    by_key = {(c["method"], c["length"]): c["accuracy"] for c in result["cells"]}
    row = "| dynamic | " + " | ".join(f"{100 * by_key[('dynamic', n)]:.0f}" for n in (4096, 8192, 16384, 32768)) + " |"
    assert row in text
    assert result["date"] in text and result["gpu"] in text
