"""Updates cost what changed: new shards, tombstones, merges — and search over several shards
ranks exactly as over one (same vectors, BM25 statistics pooled over shards)."""
import hashlib
import json

import pytest
from click.testing import CliRunner

from longrag import Pipeline
from longrag.cli import main
from longrag.errors import InputError
from longrag.index import IndexStore, writer as index_writer
from longrag.index.layout import live_generation
from longrag.types import Document
from tests.helpers import FakeEncoder

TOPICS = ["cats purr and hunt mice", "rockets burn propellant for thrust", "green tea is brewed from leaves",
          "volcanoes erupt molten lava", "trains run on steel rails", "bees make honey from nectar",
          "glaciers carve valleys slowly", "violins have four strings", "tides follow the moon",
          "bread rises with yeast", "owls hunt at night", "copper conducts electricity"]


def document(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id, text, hashlib.sha256(text.encode()).hexdigest())


def documents(n: int) -> list[Document]:
    return [document(f"doc{i:03d}.txt", (f"Document {i} is about {TOPICS[i % len(TOPICS)]}. "
                                         f"It has its own words number{i}. ") * (3 + i % 5)) for i in range(n)]


def pipe(**config) -> Pipeline:
    return Pipeline.from_config(config or None, encoder=FakeEncoder())


def shards(index) -> list[dict]:
    return json.loads((live_generation(index) / "manifest.json").read_text())["shards"]


def ranking(index, query: str, k: int = 10):
    return Pipeline.load(index, encoder=FakeEncoder()).search(query, k=k)


def same_ranking(a, b) -> None:
    assert [(h.doc_id, h.start, h.end) for h in a] == [(h.doc_id, h.start, h.end) for h in b]
    # the same vectors and statistics, summed in another order: equal within float32 rounding
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


QUERIES = ["cats hunt mice", "number7 honey", "steel rails trains", "molten lava number15"]


@pytest.mark.parametrize("mode", ["hybrid", "chunks", "document"])
def test_added_documents_go_to_a_new_shard_and_rank_as_in_one_index(tmp_path, mode):
    docs = documents(16)
    grown = tmp_path / "grown"
    p = pipe(index={"mode": mode})
    p.index_documents(docs[:12], grown, progress=False)
    encoder = FakeEncoder()
    report = Pipeline.from_config({"index": {"mode": mode}}, encoder=encoder).index_documents(
        docs[12:], grown, progress=False, add=True)
    assert (report.added, report.unchanged, report.documents) == (4, 0, 16)
    alone = FakeEncoder()
    Pipeline.from_config({"index": {"mode": mode}}, encoder=alone).index_documents(docs[12:], tmp_path / "new",
                                                                                   progress=False)
    assert encoder.encoded_tokens == alone.encoded_tokens  # only the new ones were encoded
    assert [s["documents"] for s in shards(grown)] == [12, 4]
    whole = tmp_path / "whole"
    pipe(index={"mode": mode}).index_documents(docs, whole, progress=False)
    for query in QUERIES:
        for k in (3, 16, 40):
            same_ranking(ranking(grown, query, k), ranking(whole, query, k))


def test_updated_and_removed_documents_are_tombstoned_then_merged_away(tmp_path):
    docs = documents(12)
    index = tmp_path / "idx"
    pipe().index_documents(docs, index, progress=False)
    changed = document("doc003.txt", "Document 3 now tells of lighthouses and foghorns. " * 4)
    report = pipe().index_documents([changed, *docs[:3], *docs[4:10]], index, progress=False)  # 10, 11 gone
    assert (report.updated, report.removed, report.unchanged, report.documents) == (1, 2, 9, 10)
    first, second = shards(index)
    assert first["deleted"] == [3, 10, 11] and first["documents"] == 9 and second["documents"] == 1
    store = IndexStore(index)
    assert set(store.documents()) == {d.doc_id for d in docs[:10]} and len(store) == 10
    hits = ranking(index, "lighthouses foghorns", k=20)
    assert hits[0].doc_id == "doc003.txt" and "lighthouses" in hits[0].snippet
    assert {"doc010.txt", "doc011.txt"}.isdisjoint(h.doc_id for h in hits)
    assert all("Document 3 is about" not in h.snippet for h in hits)  # the old version is gone
    # --optimize: one shard, tombstones dropped (until then BM25 statistics still count them, as Lucene's do)
    report = pipe().optimize(index)
    [merged] = shards(index)
    assert merged["deleted"] == [] and merged["documents"] == 10 and report.documents == 10
    assert sorted(p.name for p in (index / "shards").iterdir()) == [merged["name"]]
    clean = tmp_path / "clean"
    pipe().index_documents([*docs[:3], changed, *docs[4:10]], clean, progress=False)
    for query in QUERIES[:3]:
        same_ranking(ranking(index, query, 12), ranking(clean, query, 12))


def test_remove_by_id_needs_no_encoder_and_refuses_unknown_ids(tmp_path, monkeypatch):
    index = tmp_path / "idx"
    pipe().index_documents(documents(6), index, progress=False)
    with pytest.raises(InputError, match="not in index.*'nope.txt'.*nothing was changed"):
        Pipeline.load(index).remove(["doc001.txt", "nope.txt"])
    assert len(IndexStore(index)) == 6
    loaded = Pipeline.load(index)  # the real encoder of the config is never loaded for a removal
    monkeypatch.setattr(type(loaded), "encoder", property(lambda self: pytest.fail("encoder loaded")))
    report = loaded.remove(["doc001.txt", "doc004.txt"])
    assert (report.removed, report.documents) == (2, 4)
    assert set(IndexStore(index).documents()) == {"doc000.txt", "doc002.txt", "doc003.txt", "doc005.txt"}


def test_many_small_updates_are_merged_so_shards_stay_few(tmp_path, monkeypatch):
    monkeypatch.setattr(index_writer, "MAX_SHARDS", 4)
    docs = documents(12)
    index = tmp_path / "idx"
    pipe().index_documents(docs[:2], index, progress=False)
    for i in range(2, 12):
        pipe().index_documents([docs[i]], index, progress=False, add=True)
        assert len(shards(index)) <= 4
        assert len(list((index / "shards").iterdir())) == len(shards(index))  # merged shards are removed
    whole = tmp_path / "whole"
    pipe().index_documents(docs, whole, progress=False)
    for query in QUERIES:
        same_ranking(ranking(index, query, 12), ranking(whole, query, 12))


def test_a_large_run_is_written_as_several_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(index_writer, "SHARD_SEGMENTS", 5)  # memory while indexing follows the shard, not the corpus
    index = tmp_path / "idx"
    pipe().index_documents(documents(12), index, progress=False)
    assert len(shards(index)) > 2 and sum(s["documents"] for s in shards(index)) == 12
    whole = tmp_path / "whole"
    monkeypatch.setattr(index_writer, "SHARD_SEGMENTS", 10**6)
    pipe().index_documents(documents(12), whole, progress=False)
    for query in QUERIES:
        same_ranking(ranking(index, query, 12), ranking(whole, query, 12))


def test_a_shard_tokenizes_its_texts_for_bm25_in_parts_and_ranks_as_if_at_once(tmp_path, monkeypatch):
    from longrag.index import shard as shard_module
    monkeypatch.setattr(shard_module, "TEXTS_PER_COUNT", 4)  # BM25's memory while writing follows the part
    parts = tmp_path / "parts"
    pipe().index_documents(documents(12), parts, progress=False)
    assert len(shards(parts)) == 1
    monkeypatch.setattr(shard_module, "TEXTS_PER_COUNT", 10**6)
    whole = tmp_path / "whole"
    pipe().index_documents(documents(12), whole, progress=False)
    for query in QUERIES:
        same_ranking(ranking(parts, query, 12), ranking(whole, query, 12))


def test_an_indexing_run_holds_one_batch_of_texts_not_the_folder(tmp_path, monkeypatch):
    """Files are hashed first and read when the encoder needs them: the texts alive at any moment are
    about one encoding group's (GROUP_BATCHES batches of 512 tokens: ~28 of these 60 documents), so
    memory follows the group, not the corpus (reading the folder first held 59)."""
    import gc
    import weakref

    import longrag.indexing as indexing

    folder = tmp_path / "docs"
    folder.mkdir()
    for d in documents(60):
        (folder / d.doc_id).write_text(d.text)
    loaded, most = [], []

    def load_file(path, root, options=None):
        gc.collect()
        most.append(sum(ref() is not None for ref in loaded))  # texts still held when the next is read
        doc = real_load(path, root, options) if options else real_load(path, root)
        loaded.append(weakref.ref(doc))
        return doc

    real_load = indexing.load_file
    monkeypatch.setattr(indexing, "load_file", load_file)
    report = pipe(encoder={"batch_tokens": 512}).index(folder, tmp_path / "idx", progress=False)
    assert report.added == 60 and len(most) == 60
    assert max(most) <= 8 * indexing.GROUP_BATCHES, most


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_tombstoned_rows_never_come_back_whatever_the_faiss_index(tmp_path, factory):
    index = tmp_path / "idx"
    docs = documents(30)
    pipe(index={"factory": factory, "mode": "chunks"}).index_documents(docs, index, progress=False)
    Pipeline.load(index).remove([d.doc_id for d in docs[::2]])
    for query in QUERIES:
        hits = ranking(index, query, k=30)
        assert len(hits) == 15 and all(int(h.doc_id[3:6]) % 2 == 1 for h in hits)


def test_cli_add_remove_optimize(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("LONGRAG_INDEXES", str(tmp_path / "indexes"))
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    runner = CliRunner()
    assert runner.invoke(main, ["index", str(corpus), "--quiet"]).exit_code == 0
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "trains.txt").write_text("Trains run on steel rails. " * 20)
    result = runner.invoke(main, ["index", str(extra), "--index", "docs", "--add", "--quiet"])
    assert result.exit_code == 0 and "added 1" in result.output and "Indexed 4 documents" in result.output
    result = runner.invoke(main, ["remove", "cats.txt", "--index", "docs"])
    assert result.exit_code == 0 and "removed 1" in result.output
    result = runner.invoke(main, ["info", "--index", "docs"])
    assert "2 shards" in result.output and "1 deleted documents awaiting a merge" in result.output
    result = runner.invoke(main, ["index", "--index", "docs", "--optimize"])
    assert result.exit_code == 0 and "Indexed 3 documents" in result.output
    assert "1 shards" in runner.invoke(main, ["info", "--index", "docs"]).output
    result = runner.invoke(main, ["remove", "cats.txt", "--index", "docs"])
    assert result.exit_code == 2 and "not in index" in result.output
    result = runner.invoke(main, ["index"])
    assert result.exit_code == 2 and "give the files or folders" in result.output
