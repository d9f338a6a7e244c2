"""Indexing, incremental updates, interruption and bad input, with the fast fake encoder."""
import json

import pytest

from longrag import Pipeline
from longrag.errors import IndexSettingsMismatchError, IndexNotFoundError, InputError
from longrag.index.layout import live_generation
from tests.helpers import FakeEncoder, only_shard


def make(encoder=None, **index):
    return Pipeline.from_config({"index": index} if index else None, encoder=encoder or FakeEncoder())


def test_index_writes_faiss_store_and_manifest(tmp_path, corpus):
    out = tmp_path / "idx"
    report = make().index([corpus], index_dir=out, progress=False)
    assert report.documents == 3 and report.added == 3 and report.skipped == []
    assert {p.name for p in out.iterdir()} == {"CURRENT", ".lock", "g000001", "shards"}
    live = live_generation(out)
    assert {p.name for p in live.iterdir()} == {"manifest.json"}
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 3 and manifest["format_version"] == 4
    [shard] = manifest["shards"]
    assert {p.name for p in (out / "shards" / shard["name"]).iterdir()} == {
        "shard.json", "documents.sqlite", "segments.npy", "segment_vectors.npy", "segments.faiss", "bm25"}  # hybrid
    assert shard["vector_indexes"]["segments"] == {"file": "segments.faiss", "backend": "faiss", "factory": "Flat",
                                                   "vectors": manifest["counts"]["segments"]}
    assert shard["deleted"] == []
    assert manifest["encoder"]["model"] == "fake-hash" and manifest["index"] == {"mode": "hybrid", "backend": "faiss",
                                                                                 "factory": "auto"}
    assert not {"config", "search", "generator", "ask"} & set(manifest)  # nothing about answering
    assert {"torch", "faiss-cpu", "python"} <= set(manifest["versions"])
    assert manifest["truncation"]["documents"] == 0
    # long documents are read as several windows, each segment within the encoder window
    assert report.windowed == 2 and report.segments > 3


def test_search_returns_typed_hits_with_spans(tmp_path, corpus):
    pipe = make()
    pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    hits = pipe.search("rockets thrust propellant", k=2)
    assert [h.doc_id for h in hits][0] == "rockets.md"
    top = hits[0]
    text = (corpus / "rockets.md").read_text()
    assert 0 <= top.start < top.end <= len(text)
    assert top.snippet.lstrip("…").split()[0] in text[top.start:top.end]
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    # reload from disk gives the same answer
    again = Pipeline.load(tmp_path / "idx", encoder=FakeEncoder()).search("rockets thrust propellant", k=2)
    assert again == hits


def test_document_mode_ranks_by_document_vectors(tmp_path, corpus):
    pipe = make(mode="document")
    pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    [shard] = (tmp_path / "idx" / "shards").iterdir()
    assert (shard / "documents.faiss").exists()
    hits = pipe.search("green tea leaves", k=3)
    assert hits[0].doc_id == "tea.html" and len(hits) == 3


def test_incremental_update(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    (corpus / "cats.txt").write_text("Dogs bark loudly at the postman. " * 30)  # changed
    (corpus / "tea.html").unlink()  # deleted
    (corpus / "new.txt").write_text("Volcanoes erupt molten lava and ash.")  # added
    encoder = FakeEncoder()
    report = make(encoder).index([corpus], index_dir=out, progress=False)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 1, 1)
    assert encoder.encoded_tokens == report.encoded_tokens  # only the changed and new files were encoded
    assert encoder.encoded_tokens < report.tokens
    pipe = Pipeline.load(out, encoder=FakeEncoder())
    ids = [h.doc_id for h in pipe.search("dogs bark postman", k=10)]
    assert ids[0] == "cats.txt" and "tea.html" not in ids and "new.txt" in ids
    # the unchanged document is still found through its carried-over vectors
    assert pipe.search("rockets thrust", k=1)[0].doc_id == "rockets.md"


def test_interrupted_run_keeps_previous_index(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)
    before = Pipeline.load(out, encoder=FakeEncoder()).search("purr mice", k=3)
    (corpus / "cats.txt").write_text("completely different text about trains " * 50)
    (corpus / "more.txt").write_text("more text " * 100)
    with pytest.raises(KeyboardInterrupt):
        make(FakeEncoder(fail_after_calls=0)).index([corpus], index_dir=out, progress=False)
    assert Pipeline.load(out, encoder=FakeEncoder()).search("purr mice", k=3) == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "CURRENT", "g000001", "shards"]  # pending generation removed
    assert [p.name for p in (out / "shards").iterdir()] == ["s000001"]  # and the shard it was writing


def test_five_megabyte_document(tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    words = " ".join(f"word{i % 5000}" for i in range(800_000))
    text = words + " needle unicorn" * 40  # the last segment is all needle
    (root / "big.txt").write_text(text)
    assert (root / "big.txt").stat().st_size > 5_000_000
    pipe = make()
    report = pipe.index([root], index_dir=tmp_path / "idx", progress=False)
    assert report.tokens == 800_080 and report.truncated == []
    assert pipe.search("needle unicorn", k=1)[0].end == len(text)


def test_document_cap_is_reported_not_silent(tmp_path, corpus):
    pipe = Pipeline.from_config({"segmenter": {"max_tokens": 16, "max_document_tokens": 50}}, encoder=FakeEncoder())
    report = pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    cut = dict(report.truncated)
    assert cut["cats.txt"] == 10 * 20 - 50  # ten words per sentence, twenty sentences
    manifest = json.loads((live_generation(tmp_path / "idx") / "manifest.json").read_text())
    assert manifest["truncation"]["documents"] == len(cut)


def test_bad_files_are_listed_and_the_rest_indexed(tmp_path, corpus):
    (corpus / "empty.txt").write_text("")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (corpus / "notes.xyz").write_text("unknown format")
    report = make().index([corpus], index_dir=tmp_path / "idx", progress=False)
    reasons = {s.path.split("/")[-1]: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "broken.pdf", "notes.xyz"}
    assert report.documents == 3


def test_empty_directory_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no supported files"):
        make().index([tmp_path / "empty"], index_dir=tmp_path / "idx", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        make().index([tmp_path / "missing"], index_dir=tmp_path / "idx", progress=False)
    assert not (tmp_path / "idx").exists()


def test_searching_a_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no longrag index"):
        Pipeline.load(tmp_path / "nothing")


def test_other_encoder_is_refused(tmp_path, corpus):
    out = tmp_path / "idx"
    make().index([corpus], index_dir=out, progress=False)

    class Other(FakeEncoder):
        name = "other-model"

        def describe(self):
            return {**super().describe(), "model": "other-model"}

    with pytest.raises(IndexSettingsMismatchError, match="--rebuild"):
        make(Other()).index([corpus], index_dir=out, progress=False)
    with pytest.raises(IndexSettingsMismatchError, match="e5-small"):
        Pipeline.load(out, config={"encoder": {"model": "e5-small"}})
    make(Other()).index([corpus], index_dir=out, rebuild=True, progress=False)  # explicit rebuild works
    assert json.loads((live_generation(out) / "manifest.json").read_text())["encoder"]["model"] == "other-model"


def test_hybrid_mode_fuses_dense_and_bm25(tmp_path, corpus):
    pipe = Pipeline.from_config({"index": {"mode": "hybrid"},
                                 "search": {"fusion": ["documents", "segments", "bm25"], "fusion_method": "rrf"}},
                                encoder=FakeEncoder())
    pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    live = live_generation(tmp_path / "idx")
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["fusion"]["method"] == "reciprocal_rank_fusion"
    assert (only_shard(tmp_path / "idx") / "bm25").is_dir() and (only_shard(tmp_path / "idx") / "documents.faiss").exists()
    hits = pipe.search("green tea leaves", k=3)
    assert hits[0].doc_id == "tea.html"
    # a document first in all three rankings gets the maximum fused score
    assert hits[0].score == pytest.approx(3 / 61)


def test_default_hybrid_stores_no_document_vectors_and_says_so_when_asked(tmp_path, corpus):
    pipe = make()  # default: segments and BM25, convex fusion
    pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    assert not (only_shard(tmp_path / "idx") / "documents.faiss").exists()
    hits = pipe.search("green tea leaves", k=3)
    assert hits[0].doc_id == "tea.html"
    # convex scores: mean over 2 rankings of scores scaled to [0, 1]; the winner tops at least one
    assert 0.5 <= hits[0].score <= 1.0 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    wants_documents = Pipeline.load(tmp_path / "idx", config={"index": {"mode": "hybrid"},
                                                              "search": {"fusion": ["documents", "bm25"]}},
                                   encoder=FakeEncoder())
    with pytest.raises(InputError, match="no document vectors"):
        wants_documents.search("green tea leaves")


def test_convex_fusion_lets_a_large_score_gap_win_where_ranks_tie():
    from longrag.retrieval import fuse, fuse_scores

    dense = [("a", 0.80, None), ("b", 0.79, None), ("c", 0.10, None)]
    lexical = [("b", 30.0, None), ("a", 2.0, None), ("c", 1.0, None)]
    assert fuse([dense, lexical])[0][1] == fuse([dense, lexical])[1][1]  # RRF: a and b tie on ranks
    ranked = fuse_scores([dense, lexical])
    assert [d for d, _, _ in ranked] == ["b", "a", "c"]
    assert ranked[0][1] == pytest.approx((0.79 / 0.80 + 1.0) / 2)  # scaled from 0 to the top, averaged
    assert fuse_scores([dense, lexical], floor=False)[0][1] == pytest.approx((0.69 / 0.70 + 1.0) / 2)  # min-max


def test_theoretical_min_keeps_a_flat_ranking_from_outvoting_a_clear_winner():
    """The needle-at-32k failure of min-max: cosines all within 0.10 are stretched to [0, 1], so
    the dense favourite beats the document BM25 ranks first by a wide margin."""
    from longrag.retrieval import fuse_scores

    dense = [("w", 0.50, None), ("x", 0.45, None), ("gold", 0.41, None), ("y", 0.40, None)]
    lexical = [("gold", 20.0, None), ("w", 12.0, None), ("x", 3.0, None), ("y", 2.0, None)]
    assert fuse_scores([dense, lexical], floor=False)[0][0] == "w"  # min-max: 0.78 vs gold 0.55
    assert fuse_scores([dense, lexical])[0][0] == "gold"  # scaled from 0: gold 0.91 vs 0.80


def test_k_must_be_a_positive_whole_number(tmp_path, corpus):
    pipe = make()
    pipe.index([corpus], index_dir=tmp_path / "idx", progress=False)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="k must be a positive whole number"):
            pipe.search("purr mice", k=bad)
    assert len(pipe.search("purr mice", k=2)) == 2


def test_indexing_has_one_entry_point_that_loads_the_encoder_only_once_the_checks_pass(tmp_path, corpus):
    from longrag.config import load_config
    from longrag.indexing import build

    loads = []

    def encoder():
        loads.append(1)
        return FakeEncoder()

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("not an index")
    with pytest.raises(InputError, match="not a longrag index"):
        build([corpus], tmp_path / "taken", load_config(None), encoder, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no supported files"):
        build([tmp_path / "empty"], tmp_path / "idx", load_config(None), encoder, progress=False)
    assert loads == [] and not (tmp_path / "idx").exists()
    report = build([corpus], tmp_path / "idx", load_config(None), encoder, progress=False)
    assert loads == [1] and report.added == 3
    assert Pipeline.load(tmp_path / "idx", encoder=FakeEncoder()).search("green tea", k=1)[0].doc_id == "tea.html"
