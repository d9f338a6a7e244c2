"""Bad input, swept: every case is one `error:` line with exit status 2, and neither the existing
index nor any of the user's files changes (CLI in process, fake encoder)."""
import json
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from longrag.cli import main
from longrag.config import load_config
from longrag.errors import ConfigError
from longrag.index import writer as index_writer
from longrag.index.layout import live_generation, writer_lock
from tests.helpers import REPO, FakeEncoder, only_shard


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write(path, text):
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)


def _file(tmp, name, text):
    write(tmp / name, text)


# name → (what the case prepares in the working folder, the command, words the error must contain)
CASES = {
    "index into a folder that is not an index": (lambda t: (t / "u").mkdir() or _file(t / "u", "notes.md", "hi"),
                                                 ["index", "docs", "--index", "./u"], "not a longrag index"),
    "index into an existing file": (lambda t: _file(t, "afile.txt", "precious"),
                                    ["index", "docs", "--index", "./afile.txt"], "is not a folder"),
    "index into the source folder": (None, ["index", "docs", "--index", "./docs"], "not a longrag index"),
    "index below a file": (lambda t: _file(t, "afile.txt", "precious"),
                           ["index", "docs", "--index", "./afile.txt/idx"], "is not a folder"),
    "missing folder": (None, ["index", "missing-dir"], "does not exist"),
    "empty folder": (lambda t: (t / "empty").mkdir(), ["index", "empty"], "no supported files"),
    "only unsupported files": (lambda t: (t / "odd").mkdir() or _file(t / "odd", "a.xyz", "x"),
                               ["index", "odd"], "no supported files"),
    "only unreadable files": (lambda t: (t / "bad").mkdir() or _file(t / "bad", "e.txt", "") or
                              _file(t / "bad", "b.pdf", b"%PDF-1.4 junk"), ["index", "bad"], "none of the 2 files"),
    "only names that are not UTF-8": (lambda t: (t / "names").mkdir() or
                                      (t / "names" / bytes.decode(b"x\xff.txt", "utf-8", "surrogateescape")).write_text("x"),
                                      ["index", "names"], "no supported files"),
    "config file missing": (None, ["index", "docs", "--config", "nope.yaml"], "does not exist"),
    "config not UTF-8": (lambda t: _file(t, "c.yaml", b"encoder:\n  model: caf\xe9\n"),
                         ["index", "docs", "--config", "c.yaml"], "not UTF-8"),
    "config not YAML": (lambda t: _file(t, "c.yaml", "encoder: [unclosed\n"), ["index", "docs", "--config", "c.yaml"],
                        "not valid YAML"),
    "config a list": (lambda t: _file(t, "c.yaml", "- 1\n- 2\n"), ["index", "docs", "--config", "c.yaml"],
                      "must hold a mapping"),
    "config section not a mapping": (lambda t: _file(t, "c.yaml", "encoder: 5\n"), ["index", "docs", "--config", "c.yaml"],
                                     "must be a mapping"),
    "unknown section": (lambda t: _file(t, "c.yaml", "encodr: {}\n"), ["index", "docs", "--config", "c.yaml"],
                        "did you mean encoder"),
    "unknown key": (lambda t: _file(t, "c.yaml", "encoder: {modle: x}\n"), ["index", "docs", "--config", "c.yaml"],
                    "did you mean encoder.model"),
    "wrong type": (lambda t: _file(t, "c.yaml", "search: {k: ten}\n"), ["search", "x", "--config", "c.yaml"],
                   "search.k' must be int"),
    "not a FAISS factory": (lambda t: _file(t, "c.yaml", "index: {factory: NotAFactory99}\n"),
                            ["index", "docs", "--index", "./fresh", "--config", "c.yaml"], "not a FAISS factory"),
    "CUDA without a GPU": (lambda t: _file(t, "c.yaml", "encoder: {device: cuda}\n"),
                           ["index", "docs", "--index", "./fresh", "--config", "c.yaml"], "no CUDA GPU"),
    "unknown device": (lambda t: _file(t, "c.yaml", "encoder: {device: tpu}\n"),
                       ["index", "docs", "--index", "./fresh", "--config", "c.yaml"], "encoder.device must be"),
    "bad dtype": (lambda t: _file(t, "c.yaml", "encoder: {dtype: int4}\n"), ["index", "docs", "--config", "c.yaml"],
                  "encoder.dtype must be one of"),
    "bad index mode": (lambda t: _file(t, "c.yaml", "index: {mode: magic}\n"), ["index", "docs", "--config", "c.yaml"],
                       "index.mode must be one of"),
    "bad fusion ranking": (lambda t: _file(t, "c.yaml", "search: {fusion: [vibes]}\n"), ["search", "x", "--config", "c.yaml"],
                           "search.fusion must be"),
    "bad fusion method": (lambda t: _file(t, "c.yaml", "search: {fusion_method: bogus}\n"),
                          ["search", "x", "--config", "c.yaml"], "search.fusion_method must be one of"),
    "segments too small": (lambda t: _file(t, "c.yaml", "segmenter: {max_tokens: 4}\n"),
                           ["index", "docs", "--config", "c.yaml"], "segmenter.max_tokens must be >= 8"),
    "unknown selector": (lambda t: _file(t, "c.yaml", "ask: {selector: magic}\n"), ["search", "x", "--config", "c.yaml"],
                         "ask.selector must be one of"),
    "unknown generator backend": (lambda t: _file(t, "c.yaml", "generator: {backend: vllm}\n"),
                                  ["search", "x", "--config", "c.yaml"], "generator.backend must be one of auto, transformers, llama.cpp, openai"),
    "unknown generator extension": (lambda t: _file(t, "c.yaml", "generator: {extension: rope9}\n"),
                                    ["search", "x", "--config", "c.yaml"], "generator.extension must be one of"),
    "other encoder settings on an index": (lambda t: _file(t, "c.yaml", "encoder: {matryoshka_dim: 32}\n"),
                                           ["index", "docs", "--config", "c.yaml"], "--rebuild"),
    "other index mode on an index": (lambda t: _file(t, "c.yaml", "index: {mode: chunks}\n"),
                                     ["index", "docs", "--config", "c.yaml"], "mode: 'hybrid' → 'chunks'"),
    "search with another encoder": (lambda t: _file(t, "c.yaml", "encoder: {model: e5-small}\n"),
                                    ["search", "x", "--config", "c.yaml"], "'e5-small'"),
    "search a missing index": (None, ["search", "x", "--index", "nope"], "no longrag index at indexes/nope"),
    "empty query": (None, ["search", "   "], "empty query"),
    "info on a missing index": (None, ["info", "--index", "nope"], "no longrag index"),
    "manifest garbage": (lambda t: write(live_generation(t / "indexes" / "docs") / "manifest.json", "{not json"),
                         ["search", "x"], "damaged"),
    "manifest a list": (lambda t: write(live_generation(t / "indexes" / "docs") / "manifest.json", "[1, 2, 3]"),
                        ["info"], "is not a longrag manifest"),
    "manifest from a newer longrag": (lambda t: _bump_format(t), ["search", "x"], "upgrade longrag"),
    "FAISS file cut in half": (lambda t: cut_in_half(only_shard(t / "indexes" / "docs") / "segments.faiss"),
                               ["search", "x"], "s000001/segments.faiss has"),
    "store cut in half": (lambda t: cut_in_half(only_shard(t / "indexes" / "docs") / "documents.sqlite"),
                          ["info"], "documents.sqlite has"),
    "store missing": (lambda t: (only_shard(t / "indexes" / "docs") / "documents.sqlite").unlink(),
                      ["search", "x"], "documents.sqlite is missing"),
    "shard missing": (lambda t: shutil.rmtree(only_shard(t / "indexes" / "docs")),
                      ["search", "x"], "shard s000001 is missing"),
    "pointer names no generation": (lambda t: write(t / "indexes" / "docs" / "CURRENT", "../../etc\n"),
                                    ["search", "x"], "damaged"),
    "pointer to a removed generation": (lambda t: write(t / "indexes" / "docs" / "CURRENT", "g000099\n"),
                                        ["search", "x"], "damaged"),
}


def _bump_format(tmp):
    path = live_generation(tmp / "indexes" / "docs") / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format_version": 99}))


@pytest.fixture
def cli(monkeypatch, tmp_path, corpus):
    # the fake stands in for the model only: load_encoder still checks encoder.device first
    monkeypatch.setattr("longrag.encoders.transformer.TransformerEncoder", lambda settings: FakeEncoder(settings=settings))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGRAG_INDEXES", raising=False)

    def run(*args):
        result = CliRunner().invoke(main, list(args))
        return result.exit_code, result.stdout, result.stderr
    assert run("index", "docs", "--quiet")[0] == 0
    return run


def assert_refused_and_nothing_changed(cli, tmp_path, args, words):
    before = snapshot(tmp_path)
    code, _, err = cli(*args, *(["--quiet"] if args[0] == "index" else []))  # no progress bars on stderr
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert words in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # the index, its generations and the user's files: byte for byte


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(cli, tmp_path, case):
    prepare, args, words = CASES[case]
    if prepare:
        prepare(tmp_path)
    assert_refused_and_nothing_changed(cli, tmp_path, args, words)


def test_a_busy_index(cli, tmp_path):
    (tmp_path / "docs" / "new.txt").write_text("new words " * 20)
    with writer_lock(tmp_path / "indexes" / "docs"):
        assert_refused_and_nothing_changed(cli, tmp_path, ["index", "docs"], "being written by process")


def test_a_full_disk_while_writing(cli, tmp_path, monkeypatch):
    (tmp_path / "docs" / "new.txt").write_text("new words " * 20)

    def full(self, *args):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(index_writer.IndexWriter, "add", full)
    assert_refused_and_nothing_changed(cli, tmp_path, ["index", "docs"], "database or disk is full")


def test_a_read_only_index_folder(cli, tmp_path, monkeypatch):
    # permissions do not stop root (CI may run as root): the OS error is raised where a run meets it
    (tmp_path / "docs" / "new.txt").write_text("new words " * 20)

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(index_writer, "new_generation", refused)
    assert_refused_and_nothing_changed(cli, tmp_path, ["index", "docs"], "Permission denied")


# cases refused while the configuration is read: the library raises the same line as a ConfigError
CONFIG_CASES = ["config not UTF-8", "config not YAML", "config a list", "config section not a mapping", "unknown section",
                "unknown key", "wrong type", "bad dtype", "bad index mode", "bad fusion ranking", "bad fusion method",
                "segments too small", "unknown selector", "unknown generator backend", "unknown generator extension"]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_bad_config_is_a_config_error_in_python_too(tmp_path, case):
    prepare, _, words = CASES[case]
    prepare(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "c.yaml")
    assert words in str(raised.value) and "--" not in str(raised.value)  # names the setting, not a flag


# the child stops at its moment (printing its name) until the test interrupts it there
INTERRUPTED = """
import sys

def gate(moment):
    print(moment, flush=True)
    sys.stdin.readline()

class PauseAtTorch:  # a finder that only watches: torch's import starts while the command's modules load
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            gate("importing torch")
        return None

if sys.argv[1] == "importing torch":
    sys.meta_path.insert(0, PauseAtTorch())
else:
    import longrag.pipeline
    from tests.helpers import FakeEncoder

    class Gated(FakeEncoder):
        def encode_ids(self, batch, progress=None):
            gate("encoding")
            return super().encode_ids(batch, progress)
    longrag.pipeline.load_encoder = lambda settings: Gated(settings=settings)
from longrag.console import main
sys.argv = ["longrag", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("moment", ["importing torch", "encoding"])
def test_ctrl_c_during_start_up_or_indexing_exits_130_quietly(tmp_path, corpus, moment):
    """SIGINT while torch loads (before the command's modules are in) or while indexing: status 130, one line."""
    run = subprocess.Popen([sys.executable, "-c", INTERRUPTED, moment, "index", str(corpus),
                            "--index", str(tmp_path / "idx"), "--quiet"], cwd=REPO, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reached = run.stdout.readline().strip()
    if reached == moment:
        run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert reached == moment, f"the command never reached {moment!r}: {reached}{out}{err}"
    assert run.returncode == 130 and "Traceback" not in err and err.strip().startswith("interrupted"), err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "idx").exists()  # the folder this run created is gone: nothing half-written
