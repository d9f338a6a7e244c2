"""What an index generation records about itself (`Manifest`, manifest.json), the one rule for
when its vectors can be reused, and the index described in words (`longrag info`).

The manifest holds what is needed to read the index — the encoder and the settings that made its
vectors and segments, the index mode and vector backend, the BM25 settings — and a record of how it
was built; nothing about answering: search, generator and ask settings are the reader's (config).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from ..errors import IndexSettingsMismatchError
from .shard import vector_indexes

# 1: one store per generation; 2: shards with tombstones, the whole config frozen in; 3: the typed
# Manifest (read settings only); 4: BM25 name and heading fields (lexical.fields). Manifest.load reads
# 1 to 3 (3 as an index without fields: searched by text until an update counts them); an older longrag
# refuses 4 as "newer" instead of failing on the fields it does not know.
FORMAT_VERSION = 4

RUNTIME_KEYS = ("batch_tokens", "device", "runtime")  # encoder settings that change speed, not vectors
INDEX_KEYS = ("mode", "backend", "factory")  # the index section's settings an index is read with


class ManifestError(ValueError):
    """A manifest.json that is not a longrag manifest, or one of a newer format (the message says which)."""


class NewerFormatError(ManifestError):
    """A manifest written by a newer longrag."""


@dataclass
class Manifest:
    """One generation's manifest.json: it saves and loads itself (`save`, `load`)."""

    encoder: dict  # the encoder's description (Encoder.describe(): resolved model, dim, dtype, prompts …)
    encoder_settings: dict  # the encoder config keys that change vectors (all but RUNTIME_KEYS): loads the encoder
    segmenter: dict  # segmenter config section
    index: dict  # INDEX_KEYS: mode, vector backend, factory
    counts: dict  # documents, segments, tokens, windowed_documents
    format_version: int = FORMAT_VERSION
    created_utc: str = ""
    segment_tokens: int | None = None  # the longest segment: segmenter.max_tokens, or less for a short encoder window
    lexical: dict | None = None  # BM25 tokenizer settings (stopwords, stem) of a hybrid index
    fusion: dict | None = None  # how hybrid search fused when it was built (a record: search settings are the reader's)
    truncation: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    last_run: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    shards: list = field(default_factory=list)  # name, deleted, documents, segments, bytes, vector_indexes
    merged_shards: int = 0
    bytes_on_disk: int = 0

    @property
    def mode(self) -> str:
        return self.index["mode"]

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write manifest.json atomically (a temporary file renamed over it, fsynced)."""
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        """Read manifest.json, migrating formats 1 and 2. FileNotFoundError and OSError pass; a file
        that is not JSON or not a manifest raises ValueError (ManifestError)."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, data) -> "Manifest":
        if not isinstance(data, dict) or not {"encoder", "counts"} <= set(data):
            raise ManifestError("is not a longrag manifest")
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise NewerFormatError(f"was written by a newer longrag (format {version}, this one reads {FORMAT_VERSION}): "
                                "upgrade longrag")
        if "config" in data:
            data = _from_config(data)
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            missing = sorted({f.name for f in fields(cls)} - set(data))
            raise ManifestError(f"is not a longrag manifest (no {', '.join(missing)})") from None


def utc_now() -> str:
    """A manifest's timestamp: UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _from_config(data: dict) -> dict:
    """A manifest of format 1 or 2 (the whole config frozen in) in today's fields: the config's
    encoder, segmenter and index settings are kept, its search, generator and ask sections dropped
    (a reader's config decides those now). The format number is kept: format 1 is converted by the
    next update (its shards are not written yet)."""
    config = data["config"]
    out = {k: v for k, v in data.items() if k not in ("config", "faiss", "files")}  # format 1's per-file records
    out["encoder_settings"] = {k: v for k, v in config["encoder"].items() if k not in RUNTIME_KEYS}
    out["segmenter"] = config["segmenter"]
    out["index"] = {"backend": "faiss", **{k: v for k, v in config["index"].items() if k in INDEX_KEYS}}
    out.setdefault("segment_tokens", config["segmenter"]["max_tokens"])
    out["shards"] = [{**{k: v for k, v in s.items() if k != "faiss"}, "vector_indexes": vector_indexes(s)}
                     for s in data.get("shards", [])]
    return out


def vector_settings(config: dict) -> dict:
    """The settings of a config dict that change stored vectors or segments."""
    encoder = {k: v for k, v in config["encoder"].items() if k not in RUNTIME_KEYS}
    return {"encoder": encoder, "segmenter": config["segmenter"], "mode": config["index"]["mode"]}


def check_compatible(path: Path, manifest: Manifest, config: dict, encoder: dict | None = None) -> None:
    """Refuse to mix vectors: `config` (a config dict) and, once it is loaded, `encoder` (the
    encoder's description, which resolves names, prompts and dtype) must match what the index
    was built with."""
    details = []
    if encoder is not None:
        built = manifest.encoder
        details += [f"{k}: {_shown(built.get(k))} → {_shown(encoder.get(k))}"
                    for k in sorted(set(built) | set(encoder)) if k not in RUNTIME_KEYS and built.get(k) != encoder.get(k)]
    old = {"encoder": manifest.encoder_settings, "segmenter": manifest.segmenter, "mode": manifest.mode}
    new = vector_settings(config)
    for side in (old, new):  # an index written before segmenter.headers was built without headers
        side["segmenter"] = {"headers": False, **side["segmenter"]}
    if encoder is None:
        details += [f"encoder.{k}: {_shown(old['encoder'].get(k))} → {_shown(new['encoder'].get(k))}"
                    for k in sorted(set(old["encoder"]) | set(new["encoder"]))
                    if old["encoder"].get(k) != new["encoder"].get(k)]
    details += [f"{k}: {_shown(old[k])} → {_shown(new[k])}" for k in ("segmenter", "mode") if old[k] != new[k]]
    if details:
        raise IndexSettingsMismatchError(
            f"index {path} was built with different settings ({'; '.join(details)}); "
            "re-encode with --rebuild, use another --index, or drop --config")


def _shown(value) -> str:
    # an index records dtype None for float32 so that indexes written before the key still match
    return "float32 (default)" if value is None else repr(value)


def describe(path: Path, m: Manifest) -> list[str]:
    """The manifest in words, one line each."""
    enc, counts, trunc, mode = m.encoder, m.counts, m.truncation, m.mode
    lines = [f"Index {path}",
             f"  built {m.created_utc} with longrag {m.versions.get('longrag')}",
             f"  encoder {enc['model']} ({enc['dim']} dims, window {enc['window']} tokens, {enc['pooling']} pooling; "
             f"{enc.get('dtype') or 'float32'}" + (f" on {enc['runtime']['segments']}" if enc.get("runtime") else "") + ")"]
    doc_method = f"; document vectors by {enc['document_method']}" if mode in ("document", "hybrid") else ""
    lines.append(f"  mode {mode}{doc_method}"
                 + (f" to {enc['target_length']} tokens" if enc.get("target_length") else "")
                 + (f"; attention temperature {enc['temperature']}" if enc.get("temperature", 1.0) != 1.0 else "")
                 + (f"; Matryoshka {enc['matryoshka_dim']} dims" if enc.get("matryoshka_dim") else ""))
    lines.append(f"  {counts['documents']} documents, {counts['segments']} segments, {counts['tokens']:,} tokens; "
                 f"segments of at most {m.segment_tokens} tokens")
    deleted = sum(len(s["deleted"]) for s in m.shards)
    factories = sorted({f"{role} {built['backend']} {built['factory']}"
                        for s in m.shards for role, built in s["vector_indexes"].items()})
    lines.append(f"  {len(m.shards)} shards ({', '.join(factories) or 'empty'}); {deleted} deleted documents awaiting "
                 "a merge (longrag index --optimize)" if deleted else
                 f"  {len(m.shards)} shards ({', '.join(factories) or 'empty'})")
    if m.lexical:
        fields = m.lexical.get("fields")
        lines.append("  BM25 over segments" + (" (stemmed)" if m.lexical.get("stem") else "")
                     + (f" and their {' and '.join(fields)} fields" if fields else
                        " (no name or heading fields: the next `longrag index` counts them, nothing is re-encoded)"))
    lines.append(f"  {m.bytes_on_disk:,} bytes on disk")
    lines.append(f"  truncated: {trunc['documents']} documents, {trunc['tokens']:,} tokens not indexed"
                 if trunc["documents"] else "  truncated: nothing")
    if m.skipped:
        lines.append(f"  skipped at last run: {len(m.skipped)} files")
    run = m.last_run
    lines.append(f"  last run: +{run['added']} ~{run['updated']} ={run['unchanged']} -{run['removed']} "
                 f"in {run['seconds']} s")
    lines.append("  versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()))
    return lines
