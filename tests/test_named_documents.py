"""A question that names its document finds it: the BM25 name and heading fields, through the real
index of examples/contracts with the packaged encoder, and an index written before the fields."""
import json
import shutil

import pytest

from longrag.index.layout import live_generation
from longrag.pipeline import Pipeline
from longrag.types import Document
from tests.helpers import CONTRACTS

CDDL_QUESTION = "Under the CDDL, which courts have jurisdiction over litigation relating to the licence?"
OFF = {"search": {"name_weight": 0.0, "heading_weight": 0.0}}


@pytest.fixture(scope="module")
def contracts(tmp_path_factory):
    target = tmp_path_factory.mktemp("indexes") / "contracts"
    Pipeline.from_config(None).index([CONTRACTS], index_dir=target, progress=False)
    return target


@pytest.mark.slow
def test_the_cddl_question_finds_the_cddl_first_and_its_jurisdiction_sentence(contracts):
    hits = Pipeline.load(contracts).search(CDDL_QUESTION, k=5)
    assert hits[0].doc_id == "CDDL-1.0.txt", [h.doc_id for h in hits]
    text = Pipeline.load(contracts).store.document_row("CDDL-1.0.txt")["text"]
    clause = text.index("Any litigation relating to this License shall be subject to the jurisdiction")
    assert hits[0].sentence[0] <= clause < hits[0].sentence[1]  # the sentence that matched, inside the span
    assert "Any litigation relating to this License" in hits[0].snippet
    assert hits[0].section == ("9. MISCELLANEOUS.",)
    without = Pipeline.load(contracts, config=OFF).search(CDDL_QUESTION, k=5)  # the fields switched off
    assert without[0].doc_id != "CDDL-1.0.txt"


@pytest.mark.slow
def test_a_question_about_a_clause_title_meets_the_text_under_it(tmp_path):
    """The segment after a clause's heading line holds none of the heading's words: only the
    heading field lets "governing law" reach it."""
    filler = " ".join(f"The supplier ships order {i} to the buyer's warehouse within five days." for i in range(40))
    clause_text = " ".join(f"Claim {i} between the parties is construed under the statutes of Delaware, whose courts "
                           "alone decide it." for i in range(12))
    text = "1. Delivery.\n" + filler + "\n\n14. Governing Law.\n" + clause_text + "\n"
    pipe = Pipeline.from_config({"segmenter": {"max_tokens": 64}})
    clause = text.index("14. Governing Law.")
    headings = [[0, 1, "1. Delivery."], [clause, 1, "14. Governing Law."]]
    pipe.index_documents([Document("supply.txt", "supply.txt", text, "1", {"headings": headings})], tmp_path / "i",
                         progress=False)
    store = pipe.store
    spans, _ = store.segments_of("supply.txt")
    after = [(s, e) for s, e, _ in spans if s > clause]  # segments wholly under the heading
    assert after, "the clause's text must reach past its heading's segment"
    found = {(s, e): score for score, _, s, e in store.lexical_hits("Which governing law applies?", 50,
                                                                     {"name": 0, "heading": 1.0})}
    plain = {(s, e): score for score, _, s, e in store.lexical_hits("Which governing law applies?", 50,
                                                                     {"name": 0, "heading": 0})}
    assert all(span in found and span not in plain for span in after)


@pytest.mark.slow
def test_an_index_from_before_the_fields_searches_by_text_and_the_next_update_counts_them(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("CDDL-1.0.txt", "MPL-2.0-no-copyleft-exception.txt", "EUPL-1.2.txt"):
        shutil.copy(CONTRACTS / name, docs)
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    Pipeline.from_config(None).index([docs], index_dir=fresh, progress=False)
    shutil.copytree(fresh, old)
    _as_before_fields(old)

    before = Pipeline.load(old).search(CDDL_QUESTION, k=3)  # loads; BM25 over the text alone
    body_only = Pipeline.load(fresh, config=OFF).search(CDDL_QUESTION, k=3)
    assert [(h.doc_id, round(h.score, 6)) for h in before] == [(h.doc_id, round(h.score, 6)) for h in body_only]

    report = Pipeline.from_config(None).index([docs], index_dir=old, progress=False)
    assert report.unchanged == 3 and report.added == report.updated == 0
    assert any("BM25 counted again with the name and heading fields" in note for note in report.notes)
    after = Pipeline.load(old).search(CDDL_QUESTION, k=3)
    now = Pipeline.load(fresh).search(CDDL_QUESTION, k=3)
    assert [(h.doc_id, round(h.score, 6)) for h in after] == [(h.doc_id, round(h.score, 6)) for h in now]
    manifest = json.loads((live_generation(old) / "manifest.json").read_text())
    assert manifest["lexical"]["fields"] == ["name", "heading"] and manifest["format_version"] == 4


def _as_before_fields(index):
    """Rewrite an index as longrag wrote it before the BM25 fields: no field files, settings without them."""
    generation = live_generation(index)
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["lexical"] = {"stopwords": "en", "stem": False}
    manifest["format_version"] = 3
    for entry in manifest["shards"]:
        folder = index / "shards" / entry["name"]
        info = json.loads((folder / "shard.json").read_text())
        for name in ("bm25/name_terms.npz", "bm25/heading_terms.npz"):
            (folder / name).unlink()
            del info["files"][name]
        settings = folder / "bm25" / "longrag_tokenizer.json"
        settings.write_text(json.dumps({"stopwords": "en", "stem": False}))
        info["files"]["bm25/longrag_tokenizer.json"] = settings.stat().st_size
        info["bytes"] = sum(info["files"].values())
        (folder / "shard.json").write_text(json.dumps(info))
    (generation / "manifest.json").write_text(json.dumps(manifest))
