"""The CLI's own logic with the fake encoder, in process: what it prints, exit codes, refusals."""
import json
import os
import re

import pytest
from click.testing import CliRunner

from longrag.cli import main
from longrag.index.layout import writer_lock
from tests.helpers import FakeEncoder


@pytest.fixture
def cli(monkeypatch, tmp_path, corpus):
    """Run `longrag ARGS` in tmp_path with the fake encoder; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGRAG_INDEXES", raising=False)

    def run(*args):
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.stdout, result.stderr
    return run


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_index_search_json_and_info(cli):
    code, out, _ = cli("index", "docs", "--quiet")
    assert code == 0
    assert re.match(r"Indexed 3 documents into indexes/docs in \d+\.\d s$", out.splitlines()[0])
    assert "added 3, updated 0, unchanged 0, removed 0" in out
    code, out, _ = cli("search", "rockets thrust propellant", "-k", "2")
    assert code == 0 and re.match(r" 1\. [01]\.\d{3}  rockets\.md  \[\d+:\d+\]  § Rockets$", out.splitlines()[0])
    code, out, _ = cli("search", "green tea leaves", "--json", "-k", "3")
    hits = json.loads(out)
    assert [h["doc_id"] for h in hits][0] == "tea.html" and len(hits) == 3
    assert all(set(h) == {"doc_id", "path", "score", "start", "end", "snippet", "page", "pages", "section", "sentence"}
               for h in hits)
    code, out, _ = cli("info")
    assert code == 0 and "encoder fake-hash (64 dims" in out and "3 documents" in out


def test_incremental_rerun_reports_unchanged(cli):
    cli("index", "docs", "--quiet")
    code, out, _ = cli("index", "docs", "--quiet")
    assert code == 0 and "unchanged 3" in out and "(0 encoded this run)" in out


def test_index_refuses_a_folder_that_is_not_an_index(cli, tmp_path):
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "notes.md").write_text("hi")
    code, _, err = cli("index", "docs", "--index", "./u")
    assert code == 2 and "not a longrag index and not empty (it holds notes.md)" in one_error_line(err)
    assert os.listdir(tmp_path / "u") == ["notes.md"] and (tmp_path / "u" / "notes.md").read_text() == "hi"
    code, _, err = cli("index", "docs", "--index", "./docs")  # the source folder itself
    assert code == 2 and "not a longrag index" in one_error_line(err)
    assert sorted(os.listdir(tmp_path / "docs")) == ["cats.txt", "rockets.md", "tea.html"]


def test_a_busy_index_names_the_writer(cli, tmp_path):
    cli("index", "docs", "--quiet")
    with writer_lock(tmp_path / "indexes" / "docs"):
        code, _, err = cli("index", "docs", "--quiet")
    assert code == 2 and f"being written by process {os.getpid()}; wait for it to finish or pass --wait" in one_error_line(err)


@pytest.mark.parametrize("args, message", [
    (["search", "x", "--index", "nope"], "no longrag index at indexes/nope"),
    (["index", "missing-dir"], "path missing-dir does not exist"),
    (["index", "docs", "--config", "bad.yaml"], "unknown config key encoder.modle"),
    (["index", "empty"], "no supported files under empty"),
    (["info"], "no index in indexes/"),
])
def test_user_errors_are_one_line(cli, tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("encoder:\n  modle: x\n")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(*args)
    assert code == 2 and message in one_error_line(err)


def test_ctrl_c_exits_130_and_keeps_the_index(cli, monkeypatch, tmp_path):
    cli("index", "docs", "--quiet")
    (tmp_path / "docs" / "new.txt").write_text("new words here " * 30)
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder(fail_after_calls=0))
    code, _, err = cli("index", "docs", "--quiet")
    assert code == 130 and "nothing was changed" in err and "Traceback" not in err
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    code, out, _ = cli("search", "purr mice", "--json")
    assert code == 0 and {h["doc_id"] for h in json.loads(out)} == {"cats.txt", "rockets.md", "tea.html"}


def test_the_cli_imports_no_benchmark_code():
    """`longrag --help` loads the library only: the code that writes the project's own docs
    (benchmarks/readme_tables.py, generation_reports.py) is not part of the package."""
    import subprocess
    import sys
    probe = ("import longrag.cli, sys; "
             "print(sorted(m for m in sys.modules if 'readme' in m or 'generation_reports' in m))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
