"""A vector backend is one class plus one line in `index/vectors.BACKENDS`: an exact NumPy
inner-product index, registered from the tests only, indexes through the real pipeline and finds
what FAISS Flat finds; shards written by either backend are read side by side; shards written
before backends were pluggable still load."""
from __future__ import annotations

import json

import numpy as np
import pytest

from longrag import Pipeline
from longrag.config import load_config
from longrag.errors import ConfigError, IndexNotFoundError
from longrag.index import IndexStore
from longrag.index.layout import SHARDS, live_generation
from longrag.index.vectors import BACKENDS
from tests.helpers import CONTRACTS, FakeEncoder


class NumpyIndex:
    """Exact search by a NumPy matrix product: the test double backend (`index.backend: numpy`)."""

    suffix = "npyip"
    package = "numpy"

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    @classmethod
    def check(cls, factory: str, dim: int) -> None:
        if factory not in ("auto", "exact"):
            raise ConfigError(f"index.factory {factory!r} is not understood by backend numpy; use auto or exact")

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str) -> tuple["NumpyIndex", str]:
        return cls(np.asarray(vectors, np.float32).reshape(len(vectors), -1)), "exact"

    @classmethod
    def load(cls, path):
        with open(path, "rb") as handle:  # a handle: np.load/np.save would add .npy to the name
            return cls(np.load(handle))

    def save(self, path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, self.vectors)

    @property
    def size(self) -> int:
        return len(self.vectors)

    def search(self, queries, k, allowed=None):
        k = min(k, self.size if allowed is None else int(allowed.sum()))
        scores = np.asarray(queries, np.float32) @ self.vectors.T
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, rows, 1), rows.astype(np.int64)


@pytest.fixture
def numpy_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "numpy", NumpyIndex)


def shard_infos(index):
    return [json.loads(p.read_text()) for p in sorted((index / SHARDS).glob("s*/shard.json"))]


@pytest.mark.slow
def test_a_registered_backend_indexes_the_contracts_and_finds_what_faiss_flat_finds(tmp_path, numpy_backend):
    exact = Pipeline.from_config({"index": {"backend": "numpy"}})
    exact.index([CONTRACTS], index_dir=tmp_path / "numpy", progress=False)
    flat = Pipeline.from_config({"index": {"backend": "faiss", "factory": "Flat"}}, encoder=exact.encoder)
    flat.index([CONTRACTS], index_dir=tmp_path / "faiss", progress=False)
    [info] = shard_infos(tmp_path / "numpy")
    assert info["vector_indexes"]["segments"]["backend"] == "numpy" and "segments.npyip" in info["files"]
    assert not list((tmp_path / "numpy").rglob("*.faiss"))
    assert IndexStore(tmp_path / "numpy").manifest.versions["numpy"] == np.__version__
    for query in ("Can I use the licensor's trademarks?", "patent licence ends if I sue", "warranty disclaimer",
                  "must I publish the source code of a network service"):
        a, b = exact.search(query, k=5), flat.search(query, k=5)
        assert [(h.doc_id, h.start, h.end) for h in a] == [(h.doc_id, h.start, h.end) for h in b]
        # FAISS sums each inner product in its own SIMD order, NumPy in BLAS's: float32 cosines agree to ~1e-7;
        # 1e-5 leaves room for that, far below the gaps between ranked hits
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)
        vector = exact.encoder.encode_queries([query])[0]
        segments_a, segments_b = exact.store.segment_hits(vector, 20), flat.store.segment_hits(vector, 20)
        assert [h[1:] for h in segments_a] == [h[1:] for h in segments_b]
        assert [h[0] for h in segments_a] == pytest.approx([h[0] for h in segments_b], abs=1e-5)


def test_shards_of_two_backends_are_read_together_and_merged_into_the_configured_one(tmp_path, corpus, numpy_backend):
    index = tmp_path / "idx"
    Pipeline.from_config({"index": {"mode": "chunks"}}, encoder=FakeEncoder()).index([corpus], index_dir=index,
                                                                                     progress=False)
    before = Pipeline.load(index, encoder=FakeEncoder()).search("purr mice", k=3)
    (corpus / "owls.txt").write_text("Owls hunt at night and see in the dark. " * 10)
    exact = Pipeline.from_config({"index": {"mode": "chunks", "backend": "numpy"}}, encoder=FakeEncoder())
    exact.index([corpus], index_dir=index, progress=False)
    assert [i["vector_indexes"]["segments"]["backend"] for i in shard_infos(index)] == ["faiss", "numpy"]
    assert exact.search("owls at night", k=1)[0].doc_id == "owls.txt"
    assert [(h.doc_id, h.start, h.end) for h in exact.search("purr mice", k=3)][:1] == \
        [(h.doc_id, h.start, h.end) for h in before][:1]
    exact.optimize(index)
    [info] = shard_infos(index)
    assert info["vector_indexes"]["segments"] == {"file": "segments.npyip", "backend": "numpy", "factory": "exact",
                                                  "vectors": info["segments"]}
    assert exact.search("owls at night", k=1)[0].doc_id == "owls.txt"


def test_an_unknown_backend_is_a_config_error_naming_the_choices(tmp_path, numpy_backend):
    with pytest.raises(ConfigError, match=r"index.backend must be one of faiss, numpy, got 'annoy'"):
        load_config({"index": {"backend": "annoy"}})
    with pytest.raises(ConfigError, match=r"not understood by backend numpy; use auto or exact"):
        Pipeline.from_config({"index": {"backend": "numpy", "factory": "HNSW32"}},
                             encoder=FakeEncoder()).index_documents([], tmp_path / "idx", progress=False)
    assert not (tmp_path / "idx").exists()


def test_a_shard_written_before_backends_were_pluggable_still_loads(tmp_path, corpus):
    """shard.json and the manifest's shard entries recorded {"faiss": {"segments.faiss": {...}}}."""
    index = tmp_path / "idx"
    pipe = Pipeline.from_config(None, encoder=FakeEncoder())
    pipe.index([corpus], index_dir=index, progress=False)
    before = Pipeline.load(index, encoder=FakeEncoder()).search("green tea leaves", k=3)
    [path] = (index / SHARDS).glob("s*/shard.json")
    info = json.loads(path.read_text())
    old = {f"{role}.faiss": {k: v for k, v in record.items() if k != "file"}
           for role, record in info.pop("vector_indexes").items()}
    path.write_text(json.dumps({**info, "faiss": old}, indent=1))
    manifest_path = live_generation(index) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["shards"]:
        entry.pop("vector_indexes")
        entry["faiss"] = old
    manifest_path.write_text(json.dumps(manifest))
    assert Pipeline.load(index, encoder=FakeEncoder()).search("green tea leaves", k=3) == before
    # an update keeps the old shard and records the new key for what it writes
    (corpus / "owls.txt").write_text("Owls hunt at night and see in the dark. " * 10)
    pipe.index([corpus], index_dir=index, progress=False)
    old_info, new_info = shard_infos(index)
    assert "faiss" in old_info and "vector_indexes" in new_info and "faiss" not in new_info
    # a backend this longrag lacks: a damaged index that says which backend, not a KeyError
    path.write_text(json.dumps({**info, "faiss": {"segments.faiss": {**old["segments.faiss"], "backend": "annoy"}}}))
    with pytest.raises(IndexNotFoundError, match="vector backend 'annoy'"):
        IndexStore(index)
