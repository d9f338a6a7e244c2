"""What an index generation records about itself, the one rule for when its vectors can be reused,
and the index described in words (`longrag info`)."""
from __future__ import annotations

from pathlib import Path

from ..errors import EncoderMismatchError
from .shard import vector_indexes

FORMAT_VERSION = 2  # 1: one store per generation; 2: shards with tombstones


RUNTIME_KEYS = ("batch_tokens", "device", "runtime")  # encoder settings that change speed, not vectors


def vector_settings(config: dict) -> dict:
    """The settings of a config dict that change stored vectors or segments."""
    encoder = {k: v for k, v in config["encoder"].items() if k not in RUNTIME_KEYS}
    return {"encoder": encoder, "segmenter": config["segmenter"], "mode": config["index"]["mode"]}


def check_compatible(path: Path, manifest: dict, config: dict, encoder: dict | None = None) -> None:
    """Refuse to mix vectors: `config` (a config dict) and, once it is loaded, `encoder` (the
    encoder's description, which resolves names, prompts and dtype) must match what the index
    was built with."""
    details = []
    if encoder is not None:
        built = manifest["encoder"]
        details += [f"{k}: {_shown(built.get(k))} → {_shown(encoder.get(k))}"
                    for k in sorted(set(built) | set(encoder)) if k not in RUNTIME_KEYS and built.get(k) != encoder.get(k)]
    old, new = vector_settings(manifest["config"]), vector_settings(config)
    if encoder is None:
        details += [f"encoder.{k}: {_shown(old['encoder'].get(k))} → {_shown(new['encoder'].get(k))}"
                    for k in sorted(set(old["encoder"]) | set(new["encoder"]))
                    if old["encoder"].get(k) != new["encoder"].get(k)]
    details += [f"{k}: {_shown(old[k])} → {_shown(new[k])}" for k in ("segmenter", "mode") if old[k] != new[k]]
    if details:
        raise EncoderMismatchError(
            f"index {path} was built with different settings ({'; '.join(details)}); "
            "re-encode with --rebuild, use another --index, or drop --config")


def _shown(value) -> str:
    # an index records dtype None for float32 so that indexes written before the key still match
    return "float32 (default)" if value is None else repr(value)


def describe(path: Path, manifest: dict) -> list[str]:
    """The manifest in words, one line each."""
    m = manifest
    enc, counts, trunc = m["encoder"], m["counts"], m["truncation"]
    mode = m["config"]["index"]["mode"]
    lines = [f"Index {path}",
             f"  built {m['created_utc']} with longrag {m['versions'].get('longrag')}",
             f"  encoder {enc['model']} ({enc['dim']} dims, window {enc['window']} tokens, {enc['pooling']} pooling; "
             f"{enc.get('dtype') or 'float32'}" + (f" on {enc['runtime']['segments']}" if enc.get("runtime") else "") + ")"]
    doc_method = f"; document vectors by {enc['document_method']}" if mode in ("document", "hybrid") else ""
    lines.append(f"  mode {mode}{doc_method}"
                 + (f" to {enc['target_length']} tokens" if enc.get("target_length") else "")
                 + (f"; attention temperature {enc['temperature']}" if enc.get("temperature", 1.0) != 1.0 else "")
                 + (f"; Matryoshka {enc['matryoshka_dim']} dims" if enc.get("matryoshka_dim") else ""))
    segment_tokens = m.get("segment_tokens", m["config"]["segmenter"]["max_tokens"])
    lines.append(f"  {counts['documents']} documents, {counts['segments']} segments, {counts['tokens']:,} tokens; "
                 f"segments of at most {segment_tokens} tokens")
    shards = m.get("shards", [])
    deleted = sum(len(s["deleted"]) for s in shards)
    factories = sorted({f"{role} {built['backend']} {built['factory']}"
                        for s in shards for role, built in vector_indexes(s).items()})
    lines.append(f"  {len(shards)} shards ({', '.join(factories) or 'empty'}); {deleted} deleted documents awaiting a "
                 "merge (longrag index --optimize)" if deleted else
                 f"  {len(shards)} shards ({', '.join(factories) or 'empty'})")
    if m.get("lexical"):
        lines.append("  BM25 over segments" + (" (stemmed)" if m["lexical"].get("stem") else ""))
    lines.append(f"  {m['bytes_on_disk']:,} bytes on disk")
    lines.append(f"  truncated: {trunc['documents']} documents, {trunc['tokens']:,} tokens not indexed"
                 if trunc["documents"] else "  truncated: nothing")
    if m["skipped"]:
        lines.append(f"  skipped at last run: {len(m['skipped'])} files")
    run = m["last_run"]
    lines.append(f"  last run: +{run['added']} ~{run['updated']} ={run['unchanged']} -{run['removed']} "
                 f"in {run['seconds']} s")
    lines.append("  versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    return lines
