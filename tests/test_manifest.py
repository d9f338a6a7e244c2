"""The manifest is one type: `Manifest` saves and loads itself, holds what the index is read with
and nothing about answering; manifests written before (format 2, the whole config frozen in) load
as they are, and their search, generator and ask sections no longer reach the reader."""
from __future__ import annotations

import json

import pytest

from longrag import Pipeline
from longrag.errors import IndexSettingsMismatchError
from longrag.index import IndexStore
from longrag.index.layout import live_generation
from longrag.index.manifest import FORMAT_VERSION, Manifest, ManifestError, describe
from tests.helpers import FakeEncoder, old_manifest

BUILT = {"encoder": {"document_method": "truncate", "device": "cpu"}, "segmenter": {"max_tokens": 48},
         "index": {"mode": "chunks", "factory": "Flat"},
         "generator": {"model": "SmolLM2-135M-Instruct"}, "ask": {"selector": "bm25"}, "search": {"k": 4}}


@pytest.fixture
def index(tmp_path, corpus):
    out = tmp_path / "idx"
    Pipeline.from_config(BUILT, encoder=FakeEncoder()).index([corpus], index_dir=out, progress=False)
    return out


def test_a_manifest_saves_and_loads_itself_and_holds_no_answering_settings(tmp_path, index):
    manifest = IndexStore(index).manifest
    assert manifest.format_version == FORMAT_VERSION and manifest.counts["documents"] == 3
    assert manifest.index == {"mode": "chunks", "backend": "faiss", "factory": "Flat"}
    assert manifest.segmenter["max_tokens"] == 48 and manifest.encoder_settings["document_method"] == "truncate"
    assert not {"batch_tokens", "device", "runtime"} & set(manifest.encoder_settings)  # the reader's choice
    assert manifest.shards[0]["vector_indexes"]["segments"]["factory"] == "Flat"
    written = json.loads((live_generation(index) / "manifest.json").read_text())
    assert not {"config", "search", "generator", "ask"} & set(written)
    manifest.save(tmp_path / "copy.json")
    assert Manifest.load(tmp_path / "copy.json") == manifest
    assert not (tmp_path / "copy.json.tmp").exists()
    with pytest.raises(ManifestError, match="not a longrag manifest"):
        Manifest.from_dict({"encoder": {}, "counts": {}})  # no settings, no config


def test_an_index_is_read_with_its_own_encoder_and_segmenter_and_the_readers_answering_settings(index):
    pipe = Pipeline.load(index, encoder=FakeEncoder())  # what `longrag ask --index X` does without --config
    assert pipe.config.encoder.document_method == "truncate" and pipe.config.segmenter.max_tokens == 48
    assert (pipe.config.index.mode, pipe.config.index.factory) == ("chunks", "Flat")
    # answering settings are the reader's: defaults here, not what the index was built with
    assert pipe.config.generator.model == "qwen2.5-0.5b" and pipe.config.ask.selector == "hybrid"
    assert pipe.config.search.k == 10
    mine = Pipeline.load(index, config={"encoder": {"document_method": "truncate", "batch_tokens": 1024},
                                        "segmenter": {"max_tokens": 48}, "index": {"mode": "chunks"},
                                        "ask": {"selector": "sentences"}}, encoder=FakeEncoder())
    assert mine.config.ask.selector == "sentences" and mine.config.encoder.batch_tokens == 1024
    with pytest.raises(IndexSettingsMismatchError, match="segmenter"):
        Pipeline.load(index, config={**BUILT, "segmenter": {"max_tokens": 64}})


def test_a_format_2_manifest_with_the_whole_config_still_loads(tmp_path, index):
    path = live_generation(index) / "manifest.json"
    current = IndexStore(index).manifest
    before = Pipeline.load(index, encoder=FakeEncoder()).search("purr mice", k=3)
    path.write_text(json.dumps(old_manifest(current, 2), indent=2))
    assert "frozen-generator" in path.read_text()  # the old shape, answering sections included
    migrated = IndexStore(index).manifest
    assert migrated.format_version == 2
    assert (migrated.index, migrated.segmenter, migrated.encoder_settings) == \
        (current.index, current.segmenter, current.encoder_settings)
    assert migrated.shards == current.shards and migrated.counts == current.counts
    assert describe(index, migrated) == describe(index, current)
    pipe = Pipeline.load(index, encoder=FakeEncoder())
    assert pipe.config.generator.model == "qwen2.5-0.5b" and pipe.config.ask.selector == "hybrid"
    assert pipe.config.segmenter.max_tokens == 48 and pipe.search("purr mice", k=3) == before
    # the next update writes the current format, the frozen config gone
    (index.parent / "docs" / "owls.txt").write_text("Owls hunt at night. " * 10)
    pipe.index([index.parent / "docs"], progress=False)
    written = json.loads((live_generation(index) / "manifest.json").read_text())
    assert written["format_version"] == FORMAT_VERSION and "config" not in written
    assert written["segmenter"]["max_tokens"] == 48 and written["counts"]["documents"] == 4
