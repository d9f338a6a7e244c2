"""The presets in configs/ for the methods the comparison studies: each a config `longrag index
--config` takes and `longrag compare --conditions` can name."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from longrag import Pipeline
from longrag.config import load_config
from longrag.errors import LongragError
from longrag.evaluation.conditions import CONDITIONS, parse_conditions
from tests.helpers import CONTRACTS, REPO

PRESETS = {  # file → (index.mode, encoder.document_method, encoder.temperature)
    "pi.yaml": ("document", "pi", 1.0),
    "tempscale.yaml": ("document", "pi", "log"),
    "late-chunks.yaml": ("late_chunks", "windows", 1.0),
    "hybrid.yaml": ("hybrid", "windows", 1.0),
    "chunks.yaml": ("chunks", "windows", 1.0),
}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_sets_its_method(name):
    config = load_config(REPO / "configs" / name)
    assert (config.index.mode, config.encoder.document_method, config.encoder.temperature) == PRESETS[name]
    if config.encoder.document_method == "pi":
        assert config.encoder.target_length == 8192


def test_hybrid_preset_is_the_default():
    assert load_config(REPO / "configs" / "hybrid.yaml") == load_config(None)


def test_compare_names_a_preset_by_its_file(tmp_path):
    pi, builtin = parse_conditions(f"{REPO / 'configs' / 'pi.yaml'},pi")
    assert pi.name == "pi.yaml" and pi.kind == "longrag" and builtin is CONDITIONS["pi"]
    assert pi.overrides == {"encoder": {"document_method": "pi", "target_length": 8192}, "index": {"mode": "document"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text("index:\n  mode: chunkz\n")
    with pytest.raises(LongragError, match="index.mode must be one of"):
        parse_conditions(str(bad))
    with pytest.raises(LongragError, match="does not exist"):
        parse_conditions(str(tmp_path / "missing.yaml"))


@pytest.mark.slow  # encodes with the packaged MiniLM
@pytest.mark.parametrize("name", PRESETS)
def test_preset_indexes_and_searches_the_contracts(name, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for file in ("Apache-2.0.txt", "MIT.txt", "ISC.txt"):  # Apache-2.0 is longer than one encoder window
        shutil.copy(CONTRACTS / file, docs / file)
    pipe = Pipeline.from_config(REPO / "configs" / name)
    report = pipe.index(docs, index_dir=tmp_path / "index", progress=False)
    assert report.added == 3
    hits = pipe.search("patent license terminates if you start patent litigation", k=3)
    names = [Path(h.path).name for h in hits]
    assert sorted(names) == ["Apache-2.0.txt", "ISC.txt", "MIT.txt"]
    for hit in hits:  # the best span is a real span of the file, whatever ranked the document
        assert 0 <= hit.start < hit.end <= len((docs / Path(hit.path).name).read_text())
    if pipe.config.index.mode != "document":  # segment rankings find the patent clause; a whole-document
        assert names[0] == "Apache-2.0.txt", names  # vector of MiniLM under PI need not (docs/results.md)
