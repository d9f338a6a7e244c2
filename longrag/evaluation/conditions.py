"""Named retrieval conditions compared by `longrag compare`, all on the same encoder and data.

Each longrag condition is a set of config overrides run through the real Pipeline (index on disk,
search as users do); `bm25` and `langchain` are baselines run as their own users run them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import load_config
from ..errors import InputError


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    kind: str = "longrag"  # a key of runner.RUNNERS: longrag | bm25 | langchain


def _doc(method: str, **encoder: Any) -> dict:
    return {"encoder": {"document_method": method, **encoder}, "index": {"mode": "document"}}


CONDITIONS: dict[str, Condition] = {c.name: c for c in [
    Condition("truncate", "one vector per document from its first window (the usual default)", _doc("truncate")),
    Condition("pcw", "one vector per document: mean of balanced window vectors (parallel context windows)", _doc("windows")),
    Condition("pi", "one vector per document, positions linearly interpolated to 8192", _doc("pi", target_length=8192)),
    Condition("pi_temp", "PI to 8192 plus LongEmbed's length-dependent attention temperature",
              _doc("pi", target_length=8192, temperature="log")),
    Condition("gp", "grouped positions to 8192", _doc("gp", target_length=8192)),
    Condition("rp", "recurrent positions to 8192", _doc("rp", target_length=8192)),
    Condition("chunks256", "independent balanced chunks of ≤256 tokens, document = best chunk (the usual RAG baseline)",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "chunks"}}),
    Condition("chunks512", "independent balanced chunks of ≤510 tokens, document = best chunk",
              {"segmenter": {"max_tokens": 510}, "index": {"mode": "chunks"}}),
    Condition("late_chunks", "late chunking: segments pooled from whole-window token vectors (≤256-token segments)",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "late_chunks"}}),
    Condition("late_chunks_pi", "late chunking in windows of 4096 positions (PI): segments see 4k tokens of context",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "late_chunks"},
               "encoder": {"document_method": "pi", "target_length": 4096}}),
    Condition("hybrid", "RRF of document vectors (PCW), chunk max-sim and BM25 over chunks",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "hybrid"},
               "search": {"fusion": ["documents", "segments", "bm25"], "fusion_method": "rrf"}}),
    Condition("hybrid_lexical", "RRF of chunk max-sim and BM25 over chunks (no document vector)",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "hybrid"}, "search": {"fusion": ["segments", "bm25"], "fusion_method": "rrf"}}),
    Condition("hybrid_convex", "the default: chunk max-sim and BM25 over chunks, fused by the mean of scores scaled "
              "from 0 to each ranking's top", {"segmenter": {"max_tokens": 256}, "index": {"mode": "hybrid"},
                                               "search": {"fusion": ["segments", "bm25"], "fusion_method": "convex"}}),
    Condition("hybrid_minmax", "hybrid_convex with min-max normalised scores (scaled from each ranking's lowest)",
              {"segmenter": {"max_tokens": 256}, "index": {"mode": "hybrid"},
               "search": {"fusion": ["segments", "bm25"], "fusion_method": "minmax"}}),
    *[Condition(f"matryoshka{k}", f"chunks256 with the embedding cut to its first {k} dims (renormalised)",
                {"segmenter": {"max_tokens": 256}, "index": {"mode": "chunks"}, "encoder": {"matryoshka_dim": k}})
      for k in (64, 128, 256)],
    Condition("bm25", "BM25 over whole documents (bm25s), no encoder", kind="bm25"),
    Condition("langchain", "peer: LangChain RecursiveCharacterTextSplitter(1000, 200) + FAISS vector store + "
              "HuggingFaceEmbeddings on the same model", kind="langchain"),
]}

DEFAULT_CONDITIONS = ("truncate", "pcw", "chunks256", "chunks512", "late_chunks", "hybrid", "hybrid_lexical", "hybrid_convex",
                      "bm25", "langchain")


PRESET_SUFFIXES = (".yaml", ".yml")


def preset_condition(path: str | Path) -> Condition:
    """A config file (a preset such as configs/pi.yaml) as a condition: its keys override the base config.
    Named by its file name (`pi.yaml`), so its cells never mix with the built-in condition of the same stem."""
    path = Path(path)
    load_config(path)  # the file's own errors (missing, not YAML, unknown key, bad value) as a config file's
    overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Condition(path.name, f"preset {path}", {k: dict(v or {}) for k, v in overrides.items()})


def parse_conditions(text: str) -> list[Condition]:
    """Comma-separated condition names (CONDITIONS) or config files ending in .yaml / .yml (presets)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONDITIONS and not n.endswith(PRESET_SUFFIXES)]
    if unknown or not names:
        raise InputError(f"unknown condition {', '.join(unknown) or '(none given)'}; valid: {', '.join(CONDITIONS)}, "
                         "or a config file (configs/pi.yaml)")
    return [CONDITIONS[n] if n in CONDITIONS else preset_condition(n) for n in names]
