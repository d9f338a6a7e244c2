"""What tests share besides fixtures: paths, the fake encoder, and the one tolerance for model outputs."""
from __future__ import annotations

import functools
import json
import hashlib
import re
from pathlib import Path

import numpy as np

from longrag.index.layout import live_generation
from longrag.types import TokenizedText, balanced_windows

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "examples" / "contracts"
DATA = REPO.parent / "shared" / "data"


@functools.lru_cache(maxsize=None)
def _token_vector(token_id: int, dim: int) -> np.ndarray:
    return np.random.default_rng(token_id).standard_normal(dim).astype(np.float32)


class FakeEncoder:
    """Same interface as TransformerEncoder; a word's vector is seeded by its hash."""

    name = "fake-hash"
    dim = 64
    window = 64
    segment_window = 64
    long_window = 64

    def __init__(self, fail_after_calls: int | None = None, settings=None):
        self.settings = settings  # an EncoderConfig: its vector settings show in describe(), as a real encoder's do
        self.calls = 0
        self.encoded_tokens = 0
        self.fail_after_calls = fail_after_calls

    def tokenize(self, text: str) -> TokenizedText:
        spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
        ids = np.array([int.from_bytes(hashlib.sha256(text[a:b].lower().encode()).digest()[:4], "little")
                        for a, b in spans], dtype=np.int64)
        return TokenizedText(ids, np.array(spans, dtype=np.int64).reshape(-1, 2))

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+", text))

    def _vec(self, ids) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for i in ids:
            v += _token_vector(int(i), self.dim)
        return v / max(np.linalg.norm(v), 1e-9)

    def encode_queries(self, texts):
        return np.stack([self._vec(self.tokenize(t).ids) for t in texts])

    def encode_ids(self, batch, progress=None):
        self.calls += 1
        if self.fail_after_calls is not None and self.calls > self.fail_after_calls:
            raise KeyboardInterrupt  # simulates Ctrl-C in the middle of encoding
        for ids in batch:
            assert len(ids) <= self.window
            self.encoded_tokens += len(ids)
        return np.stack([self._vec(ids) for ids in batch])

    def encode_document(self, ids, progress=None):
        windows = [ids[a:b] for a, b in balanced_windows(len(ids), self.window)]
        v = self.encode_ids(windows).mean(0)
        return v / np.linalg.norm(v)

    def truncated_tokens(self, n_tokens: int) -> int:
        return 0

    def describe(self) -> dict:
        described = {"model": self.name, "dim": self.dim, "window": self.window, "pooling": "mean",
                     "document_method": "windows", "target_length": None, "temperature": 1.0, "matryoshka_dim": None}
        if self.settings is not None:
            described["matryoshka_dim"] = self.settings.matryoshka_dim
            described["document_method"] = self.settings.document_method
        return described


# Two forward passes of the same weights on different model objects (a deep copy, a patched copy,
# another batch shape) may run different kernels: oneDNN/MKL pick SIMD code by CPU and by memory
# alignment, so float32 sums are rounded in another order. Measured: differences in the 8th
# significant digit on AMD EPYC. These bounds sit two orders above that and far below any real
# change of the computation (a wrong position row moves vectors by 1e-2 or more).
MIN_COSINE = 1 - 1e-6
MAX_ABS_DIFF = 1e-5


def assert_same_vectors(a, b) -> None:
    """The same computation up to float32 rounding (see MIN_COSINE)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    flat_a, flat_b = a.reshape(len(a), -1) if a.ndim > 1 else a[None], b.reshape(len(b), -1) if b.ndim > 1 else b[None]
    cosines = (flat_a * flat_b).sum(1) / np.maximum(np.linalg.norm(flat_a, axis=1) * np.linalg.norm(flat_b, axis=1), 1e-30)
    assert cosines.min() >= MIN_COSINE, cosines.min()
    assert np.abs(a - b).max() <= MAX_ABS_DIFF, np.abs(a - b).max()


def only_shard(index: Path) -> Path:
    """The folder of an index's one shard (a small index written in one run has one)."""
    [shard] = json.loads((live_generation(index) / "manifest.json").read_text())["shards"]
    return index / "shards" / shard["name"]


# the store of an index of format 1 (before shards): one SQLite file with text and vectors
FORMAT_1_SCHEMA = """
CREATE TABLE documents(
  doc_id TEXT PRIMARY KEY, path TEXT, sha256 TEXT, n_chars INTEGER, n_tokens INTEGER,
  truncated_tokens INTEGER, metadata TEXT, text TEXT, doc_row INTEGER, doc_vector BLOB);
CREATE TABLE segments(
  row INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER, n_tokens INTEGER, vector BLOB);
"""


def write_format_1(index: Path, out: Path) -> None:
    """Rewrite a (fresh, one-shard) index in format 1 at `out`: the layout longrag wrote before
    shards (CURRENT → g000001/ with manifest.json, store.sqlite and segments.faiss)."""
    import faiss
    import sqlite3

    from longrag.index import IndexStore

    store = IndexStore(index)
    generation = out / "g000001"
    generation.mkdir(parents=True)
    db = sqlite3.connect(generation / "store.sqlite")
    db.executescript(FORMAT_1_SCHEMA)
    row, vectors = 0, []
    for doc_id in store.documents():
        doc = store.document_row(doc_id)
        db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,NULL,NULL)",
                   (doc_id, doc["path"], doc["sha256"], doc["n_chars"], doc["n_tokens"], doc["truncated_tokens"],
                    json.dumps(doc["metadata"]), doc["text"]))
        spans, segment_vectors = store.segments_of(doc_id)
        for (start, end, n_tokens), vector in zip(spans, segment_vectors):
            db.execute("INSERT INTO segments VALUES (?,?,?,?,?,?)", (row, doc_id, start, end, n_tokens,
                                                                      vector.astype(np.float32).tobytes()))
            row += 1
        vectors.append(segment_vectors)
    db.commit()
    db.close()
    flat = faiss.IndexFlatIP(store.shards[0].vectors.shape[1])
    flat.add(np.concatenate(vectors).astype(np.float32))
    faiss.write_index(flat, str(generation / "segments.faiss"))
    manifest = {k: v for k, v in old_manifest(store.manifest, 1).items() if k not in ("shards", "merged_shards")}
    manifest.update(faiss={"segments.faiss": {"backend": "faiss", "factory": "Flat"}})
    (generation / "manifest.json").write_text(json.dumps(manifest))
    (out / "CURRENT").write_text("g000001\n")


def old_manifest(manifest, version: int = 2) -> dict:
    """A Manifest in the shape longrag wrote before the typed manifest (formats 1 and 2): the whole
    config frozen in, answering sections included, and each shard's vector indexes under a `faiss`
    key by file name."""
    from longrag.config import load_config, with_overrides

    data = manifest.to_dict()
    config = with_overrides(load_config(None), encoder=data.pop("encoder_settings"), segmenter=data.pop("segmenter"),
                            index=data.pop("index")).to_dict()
    del config["index"]["backend"]  # the key came with pluggable backends
    config["generator"]["model"], config["ask"]["selector"], config["search"]["k"] = "frozen-generator", "xl3m", 3
    data["shards"] = [{**{k: v for k, v in s.items() if k != "vector_indexes"},
                       "faiss": {r["file"]: {k: v for k, v in r.items() if k != "file"} for r in s["vector_indexes"].values()}}
                      for s in data["shards"]]
    return {**data, "format_version": version, "config": config}
