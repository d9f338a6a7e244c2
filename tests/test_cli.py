"""End-to-end CLI runs in a temp dir with the real packaged encoder: output, JSON, exit codes."""
import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CONTRACTS

LONGRAG = [sys.executable, "-m", "longrag.cli"]


def run(args, cwd, ok=True):
    env = os.environ
    result = subprocess.run(LONGRAG + args, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Four licences and a broken PDF, indexed once with the real packaged encoder; read-only."""
    work = tmp_path_factory.mktemp("cli")
    docs = work / "contracts"
    docs.mkdir()
    for name in ("Apache-2.0.txt", "MIT.txt", "BSD-3-Clause.txt", "Zlib.txt"):
        shutil.copy(CONTRACTS / name, docs / name)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    result = run(["index", "contracts", "--quiet"], work)
    assert "Indexed 4 documents into indexes/contracts" in result.stdout
    assert "broken.pdf: corrupt or unreadable PDF" in result.stdout
    return work


@pytest.fixture
def workdir(built, tmp_path):
    """Each test its own copy of the built folder (tests write configs and re-index)."""
    return Path(shutil.copytree(built, tmp_path / "work"))


def test_search_text_and_json(workdir):
    text = run(["search", "patent litigation terminates the licence", "-k", "2"], workdir).stdout
    assert re.match(r" 1\. [01]\.\d{3}  Apache-2\.0\.txt  \[\d+:\d+\]$", text.splitlines()[0]), text
    hits = json.loads(run(["search", "patent litigation", "--json", "-k", "3"], workdir).stdout)
    assert len(hits) == 3
    assert set(hits[0]) == {"doc_id", "path", "score", "start", "end", "snippet"}
    assert hits[0]["doc_id"] == "Apache-2.0.txt" and hits[0]["start"] < hits[0]["end"]


def test_info_and_incremental_rerun(workdir):
    info = run(["info"], workdir).stdout
    assert "encoder all-MiniLM-L6-v2 (384 dims" in info and "4 documents" in info
    again = run(["index", "contracts", "--quiet"], workdir).stdout
    assert "unchanged 4" in again and "(0 encoded this run)" in again


@pytest.mark.parametrize("args, message", [
    (["search", "x", "--index", "nope"], "no longrag index at indexes/nope"),
    (["index", "missing-dir"], "does not exist"),
    (["index", "contracts", "--config", "bad.yaml"], "unknown config key encoder.modle"),
    (["index", "contracts", "--index", "contracts", "--config", "other.yaml"], "use --rebuild"),
])
def test_user_errors_are_one_line(workdir, args, message):
    (workdir / "bad.yaml").write_text("encoder:\n  modle: x\n")
    (workdir / "other.yaml").write_text("encoder:\n  matryoshka_dim: 64\n")
    result = run(args, workdir, ok=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_empty_directory(workdir):
    (workdir / "nothing").mkdir()
    result = run(["index", "nothing"], workdir, ok=False)
    assert result.returncode == 2 and "no supported files" in result.stderr
