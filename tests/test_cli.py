"""The CLI with the real packaged encoder: one run as a separate process (the installed entry point),
the rest in process on a per-test copy of one built index (CLI logic itself: test_cli_fast.py)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from longrag.cli import main
from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow  # real packaged models

LONGRAG = [sys.executable, "-m", "longrag.cli"]
FILES = ("Apache-2.0.txt", "MIT.txt", "BSD-3-Clause.txt", "Zlib.txt")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Four licences and a broken PDF, indexed once by `longrag` as its own process; read-only."""
    work = tmp_path_factory.mktemp("cli")
    docs = work / "contracts"
    docs.mkdir()
    for name in FILES:
        shutil.copy(CONTRACTS / name, docs / name)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    result = subprocess.run(LONGRAG + ["index", "contracts", "--quiet"], cwd=work, capture_output=True, text=True,
                            env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Indexed 4 documents into indexes/contracts" in result.stdout
    assert "broken.pdf: corrupt or unreadable PDF" in result.stdout
    return work


@pytest.fixture
def cli(built, tmp_path, monkeypatch):
    """Run `longrag ARGS` in process, in this test's own copy of the built folder."""
    work = Path(shutil.copytree(built, tmp_path / "work"))
    monkeypatch.chdir(work)
    monkeypatch.delenv("LONGRAG_INDEXES", raising=False)

    def run(*args):
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.stdout, result.stderr
    run.work = work
    return run


def test_search_text_and_json(cli):
    code, text, _ = cli("search", "patent litigation terminates the licence", "-k", "2")
    assert code == 0
    assert re.match(r" 1\. [01]\.\d{3}  Apache-2\.0\.txt  \[\d+:\d+\]  § \d+\. [A-Z]", text.splitlines()[0]), text
    code, out, _ = cli("search", "patent litigation", "--json", "-k", "3")
    hits = json.loads(out)
    assert len(hits) == 3
    assert set(hits[0]) == {"doc_id", "path", "score", "start", "end", "snippet", "page", "pages", "section", "sentence"}
    assert hits[0]["doc_id"] == "Apache-2.0.txt" and hits[0]["start"] < hits[0]["end"]
    apache = (cli.work / "contracts" / "Apache-2.0.txt").read_text()
    assert hits[0]["snippet"].lstrip("…")[:40] in re.sub(r"\s+", " ", apache[hits[0]["start"]:hits[0]["end"]])
    start, end = hits[0]["sentence"]  # the sentence the snippet is centred on, inside the span
    assert hits[0]["start"] <= start < end <= hits[0]["end"] and " ".join(apache[start:end].split())[:60] in hits[0]["snippet"]


def test_info_and_incremental_rerun(cli):
    code, info, _ = cli("info")
    assert code == 0 and "encoder all-MiniLM-L6-v2 (384 dims" in info and "4 documents" in info
    code, again, _ = cli("index", "contracts", "--quiet")
    assert code == 0 and "unchanged 4" in again and "(0 encoded this run)" in again


def test_another_encoder_setting_needs_rebuild(cli):
    (cli.work / "other.yaml").write_text("encoder:\n  matryoshka_dim: 64\n")
    code, _, err = cli("index", "contracts", "--index", "contracts", "--config", "other.yaml")
    assert code == 2 and "--rebuild" in err and len(err.strip().splitlines()) == 1
