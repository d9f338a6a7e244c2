"""`longrag compare` and `longrag eval` end to end (in process) with the packaged encoder: outputs,
resuming, bad input. The regression numbers themselves are checked by `longrag eval --slice quick`."""
import json
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from longrag.cli import main
from longrag.evaluation.regression import load_slice
from tests.helpers import CONTRACTS, REPO

# Hand-written questions about the bundled licence texts; each has exactly one right answer.
QUESTIONS = {
    "q1": ("Does my patent licence end if I sue someone for patent infringement over the work?", "Apache-2.0"),
    "q2": ("Must the copyright notice be included in all copies or substantial portions of the software?", "MIT"),
    "q3": ("Can the names of the contributors be used to endorse products derived from this software?",
           "BSD-3-Clause"),
    "q4": ("Altered source versions must be plainly marked and must not be misrepresented as the original.",
           "Zlib"),
}
DOCS = ("Apache-2.0", "MIT", "BSD-3-Clause", "Zlib", "ISC", "MPL-2.0-no-copyleft-exception")


def run(args, cwd, ok=True):
    """`longrag ARGS`; cwd is unused (every path is absolute) and kept for the call sites' clarity."""
    result = CliRunner().invoke(main, args)
    if ok:
        assert result.exit_code == 0, result.stderr[-2000:] + repr(result.exception)
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def write_beir(folder, queries=QUESTIONS, qrels=None):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for name in DOCS:
            f.write(json.dumps({"_id": name, "text": (CONTRACTS / f"{name}.txt").read_text()}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for qid, (text, _) in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = qrels if qrels is not None else [(qid, doc) for qid, (_, doc) in queries.items()]
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in rows))
    return folder


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    work = tmp_path_factory.mktemp("compare")
    data = write_beir(work / "licences")
    out = work / "out"
    result = run(["compare", "--dataset", str(data), "--conditions", "truncate,chunks256,bm25", "--out", str(out)], work)
    return work, data, out, result


@pytest.mark.slow  # real packaged models
def test_compare_writes_report_results_and_plots(compared):
    _, _, out, result = compared
    assert "| chunks256 |" in result.stdout and "| bm25 |" in result.stdout
    records = json.loads((out / "results.json").read_text())
    assert {r["condition"] for r in records} == {"truncate", "chunks256", "bm25"}
    for r in records:
        assert r["dataset"] == "licences" and r["encoder"] == "all-MiniLM-L6-v2"
        assert 0.0 <= r["ndcg@10"] <= 1.0 and r["documents"] == len(DOCS) and r["queries"] == len(QUESTIONS)
        assert r["versions"]["faiss-cpu"] and r["date_utc"]
    chunks = next(r for r in records if r["condition"] == "chunks256")
    # The questions paraphrase one clause of one licence: a working dense retriever ranks it in the
    # top 2 for every question (measured: all four at rank 1).
    assert chunks["recall@10"] == 1.0 and chunks["mrr@10"] >= 0.75
    assert chunks["index_bytes"] > 0 and chunks["encode_seconds"] > 0
    # the process holds at least the torch runtime and the 90 MB model while a cell runs, and
    # encoding the chunks allocates memory beyond what the process held before the cell
    assert chunks["process_peak_rss_mb"] > 100 and chunks["peak_memory_mb"] > 0
    report = (out / "report.md").read_text()
    assert "Paired differences vs truncate" in report and "quality_vs_index_size.png" in report
    assert (out / "quality_vs_index_size.png").stat().st_size > 1000


@pytest.mark.slow  # real packaged models
def test_compare_resumes_finished_cells(compared):
    work, data, out, _ = compared
    cells = sorted((out / "cells").glob("*.json"))
    stamps = [c.stat().st_mtime_ns for c in cells]
    run(["compare", "--dataset", str(data), "--conditions", "truncate,chunks256,bm25", "--out", str(out)], work)
    assert [c.stat().st_mtime_ns for c in cells] == stamps  # reused, not recomputed
    # one more question (a synthesized folder that grew): every cell is computed again, over five questions
    grown = write_beir(work / "grown" / "licences", {**QUESTIONS, "q5": ("Is the ISC licence permissive?", "ISC")})
    run(["compare", "--dataset", str(grown), "--conditions", "truncate,chunks256,bm25", "--out", str(out)], work)
    assert all(c.stat().st_mtime_ns != t for c, t in zip(cells, stamps))
    assert {r["queries"] for r in json.loads((out / "results.json").read_text())} == {5}


@pytest.mark.parametrize("case, message", [
    ("unknown_condition", "valid: truncate, pcw"),
    *[pytest.param(*case, marks=pytest.mark.slow) for case in [  # these load the packaged tokenizer
        ("missing_path", "unknown dataset"),
        ("empty_queries", "holds no queries"),
        ("unknown_qrels", "names 1 doc ids not in corpus.jsonl")]],
])
def test_compare_bad_input_is_one_clear_line(tmp_path, case, message):
    data = tmp_path / "set"
    conditions = "chunks256"
    if case == "unknown_condition":
        write_beir(data)
        conditions = "chunks256,chunkz"
    elif case == "missing_path":
        data = tmp_path / "no-such-folder"
    elif case == "empty_queries":
        write_beir(data, queries={}, qrels=[("q1", "MIT")])
    else:
        write_beir(data, qrels=[("q1", "Apache-2.0"), ("q2", "GPL-9.0")])
    result = run(["compare", "--dataset", str(data), "--conditions", conditions, "--out", str(tmp_path / "o")],
                 tmp_path, ok=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


TINY = {"slices": {"tiny": {"options": {"limit": 5, "lengths": [512], "docs": 5}, "rows": [
    # BM25 finds a unique pass key every time; the dense chunks find it at 512 tokens among 5 documents
    {"condition": "bm25", "dataset": "passkey-512", "metric": "recall@1", "expected": 1.0, "tolerance": 0.05},
    {"condition": "chunks256", "dataset": "passkey-512", "metric": "recall@1", "expected": 1.0, "tolerance": 0.25},
]}}}


@pytest.mark.slow  # real packaged models
def test_eval_slice_passes_and_a_wrong_expectation_fails(tmp_path):
    out = tmp_path / "eval"
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    result = run(["eval", "--slice", "tiny", "--file", str(spec), "--out", str(out)], REPO, ok=False)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "| FAIL |" not in result.stdout and result.stdout.rstrip().endswith("2 OK, 0 FAIL")

    TINY["slices"]["tiny"]["rows"][0]["expected"] = 1.5  # impossible: metrics are ≤ 1
    spec.write_text(yaml.safe_dump(TINY))
    cells = sorted(out.rglob("cells/*.json"))
    stamps = [c.stat().st_mtime_ns for c in cells]
    result = run(["eval", "--slice", "tiny", "--file", str(spec), "--out", str(out)], REPO, ok=False)
    assert result.returncode == 1 and "| FAIL |" in result.stdout and result.stdout.rstrip().endswith("1 OK, 1 FAIL")
    assert cells and [c.stat().st_mtime_ns for c in cells] == stamps  # cells reused from the first run


def test_the_quick_slice_is_well_formed():
    """`longrag eval --slice quick` (the regression check run before a release) names real
    conditions and datasets; its numbers are measured by running it, not here."""
    options, rows = load_slice(REPO / "benchmarks" / "regression.yaml", "quick")
    assert options["limit"] and rows and all(0 <= r.expected <= 1 for r in rows)


def test_eval_unknown_slice(tmp_path):
    result = run(["eval", "--slice", "nightly", "--file", str(REPO / "benchmarks" / "regression.yaml"),
                  "--out", str(tmp_path)], REPO, ok=False)
    assert result.returncode == 2 and "unknown slice 'nightly'" in result.stderr and "valid: quick" in result.stderr
