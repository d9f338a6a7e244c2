"""Write the next generation of an index: the live generation's shards with any new tombstones, new
shards for what changed, merges, then publish (layout.py). Cost follows the change, not the corpus.

The previous generation stays live until the pointer is replaced, so Ctrl-C, a crash or a full
disk during a run loses nothing that was already indexed.
"""
from __future__ import annotations

import shutil
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..lexical import LexicalSettings
from .layout import MANIFEST, SHARDS, new_generation, new_shard, publish
from .manifest import FORMAT_VERSION, Manifest
from .shard import Shard, ShardWriter
from .store import IndexStore

SHARD_SEGMENTS = 100_000  # a shard is closed at this many segments: memory while indexing follows the batch, not the corpus
MAX_SHARDS = 10  # beyond this many shards the smallest are merged (Lucene's tiered merging, simplified)


class IndexWriter:
    """Collects the changes of one run into a pending generation, then publishes it. Hold the
    index's writer lock (layout.writer_lock) from before reading the previous generation until
    commit or abort."""

    def __init__(self, target: Path, previous: IndexStore | None, dim: int, backend: str, factory: str,
                 lexical: LexicalSettings | None):
        self.target, self.previous = target, previous
        self.dim, self.backend, self.factory, self.lexical = dim, backend, factory, lexical
        self.pending = new_generation(target)
        self.entries: list[dict] = []  # the next generation's shards
        for shard in previous.shards if previous else ():
            self.entries.append({"name": shard.name, "deleted": set(np.flatnonzero(~shard.alive).tolist()),
                                 "documents": shard.live_documents, "segments": shard.live_segments,
                                 "bytes": shard.info["bytes"], "vector_indexes": shard.info["vector_indexes"]})
        self._open: ShardWriter | None = None
        self._made: list[Path] = []  # shard folders this run wrote (removed again on abort)
        # BM25 counted with other settings (an index written before the name and heading fields): every shard
        # is merged into one counted with these, its vectors reused
        self.recount = bool(previous and previous.shards and lexical is not None and previous.lexical != lexical)

    # -- changes ----------------------------------------------------------------------------------
    def add(self, doc: dict, segments: list[dict], vectors: np.ndarray, document_vector: np.ndarray | None) -> None:
        """Add one document (a dict of shard.DOCUMENT_KEYS) with its segments and vectors."""
        if self._open is None:
            self._open = ShardWriter(new_shard(self.target), self.dim, self.backend, self.factory, self.lexical)
            self._made.append(self._open.folder)
        self._open.add(doc, segments, vectors, document_vector)
        if self._open.segments >= SHARD_SEGMENTS:
            self._close()

    def delete(self, doc_id: str) -> None:
        """Tombstone a document of the previous generation."""
        shard, ordinal = self.previous.locate(doc_id)
        entry = next(e for e in self.entries if e["name"] == shard.name)
        if ordinal not in entry["deleted"]:
            entry["deleted"].add(ordinal)
            rows = shard.segments_of(ordinal)
            entry["documents"] -= 1
            entry["segments"] -= rows.stop - rows.start

    def _close(self) -> None:
        writer, self._open = self._open, None
        self.entries.append(self._publish_shard(writer))

    def _publish_shard(self, writer: ShardWriter) -> dict:
        info = writer.finish()
        final = writer.folder.with_name(writer.folder.name.removesuffix(".tmp"))
        writer.folder.rename(final)
        self._made.append(final)
        return {"name": final.name, "deleted": set(), "documents": info["documents"], "segments": info["segments"],
                "bytes": info["bytes"], "vector_indexes": info["vector_indexes"]}

    # -- merging ----------------------------------------------------------------------------------
    def _merge(self, optimize: bool) -> int:
        """Merge shards (all with `optimize`, else the smallest beyond MAX_SHARDS); returns how many went."""
        self.entries = [e for e in self.entries if e["documents"] > 0]  # wholly deleted shards just go
        if optimize or self.recount:
            chosen = self.entries if len(self.entries) > 1 or any(e["deleted"] for e in self.entries) or self.recount \
                else []
        elif len(self.entries) > MAX_SHARDS:
            chosen = sorted(self.entries, key=lambda e: e["segments"])[:len(self.entries) - MAX_SHARDS // 2 + 1]
        else:
            chosen = []
        if not chosen:
            return 0
        writer = ShardWriter(new_shard(self.target), self.dim, self.backend, self.factory, self.lexical)
        self._made.append(writer.folder)
        for entry in sorted(chosen, key=lambda e: self.entries.index(e)):  # keep document order
            shard = Shard(self.target / SHARDS / entry["name"], entry["deleted"])
            try:
                writer.add_shard(shard)
            finally:
                shard.close()
        merged = self._publish_shard(writer)
        names = {e["name"] for e in chosen}
        self.entries = [e for e in self.entries if e["name"] not in names] + [merged]
        return len(chosen)

    # -- publishing -------------------------------------------------------------------------------
    def commit(self, manifest: Manifest, optimize: bool = False) -> Manifest:
        """Close the open shard, merge, write the manifest (its shards, counts and sizes filled in
        here) and make this generation the live one."""
        if self._open is not None:
            self._close()
        merged = self._merge(optimize)
        shards = [{**e, "deleted": sorted(e["deleted"])} for e in self.entries]
        manifest = replace(
            manifest, format_version=FORMAT_VERSION, shards=shards, merged_shards=merged,
            lexical=manifest.lexical if self.lexical is None else {**asdict(self.lexical), "fields": list(self.lexical.fields)},
            counts={**manifest.counts, "documents": sum(e["documents"] for e in shards),
                    "segments": sum(e["segments"] for e in shards)},
            bytes_on_disk=sum(e["bytes"] for e in shards))
        manifest.save(self.pending / MANIFEST)
        publish(self.target, self.pending)
        return manifest

    def abort(self) -> None:
        if self._open is not None:
            self._open.abort()
        for folder in self._made:
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(self.pending, ignore_errors=True)


def convert_format_1(target: Path, generation: Path, manifest: Manifest) -> None:
    """Rewrite an index of format 1 (one SQLite store with vectors) as one shard, reusing its
    vectors; the caller holds the writer lock and publishes a fresh generation."""
    db = sqlite3.connect(f"file:{generation / 'store.sqlite'}?mode=ro", uri=True)
    lexical = LexicalSettings(**manifest.lexical) if manifest.lexical else None
    writer = IndexWriter(target, None, manifest.encoder["dim"], manifest.index["backend"], manifest.index["factory"],
                         lexical)
    try:
        columns = "doc_id, path, sha256, n_chars, n_tokens, truncated_tokens, metadata, text, doc_vector"
        for row in db.execute(f"SELECT {columns} FROM documents ORDER BY rowid"):
            doc = dict(zip(columns.split(", "), row))
            segments = db.execute("SELECT start, end, n_tokens, vector FROM segments WHERE doc_id=? ORDER BY row",
                                  (doc["doc_id"],)).fetchall()
            vectors = np.stack([np.frombuffer(s[3], np.float32) for s in segments]) if segments else \
                np.zeros((0, writer.dim), np.float32)
            vector = np.frombuffer(doc.pop("doc_vector"), np.float32) if doc["doc_vector"] is not None else None
            writer.add(doc, [{"start": s, "end": e, "n_tokens": n} for s, e, n, _ in segments], vectors, vector)
        writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    finally:
        db.close()
