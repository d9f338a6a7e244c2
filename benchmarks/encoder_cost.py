"""Forward-pass cost of encoding one document: the speed benchmark's methods, the windows each runs, their FLOPs."""
from __future__ import annotations

import json

import numpy as np
import torch

from longrag.encoders.late_chunking import overlapping_windows
from longrag.evaluation.data_files import data_root
from longrag.types import balanced_windows

# method → (encoder settings, what is encoded). Extended-position methods use the comparison's
# configs: PI/GP/RP to 8192 (a 32k document is read as 4 windows of 8k), late chunking in 512-token
# windows (late_chunks) or 4096-position PI windows (late_chunks_pi), 64 tokens of overlap.
METHODS = {
    "truncate": ({"document_method": "truncate"}, "document"),
    "windows (pcw)": ({"document_method": "windows"}, "document"),
    "pi 8192": ({"document_method": "pi", "target_length": 8192}, "document"),
    "gp 8192": ({"document_method": "gp", "target_length": 8192}, "document"),
    "rp 8192": ({"document_method": "rp", "target_length": 8192}, "document"),
    "chunks256": ({}, "chunks"),
    "late_chunks": ({}, "late"),
    "late_chunks_pi 4096": ({"document_method": "pi", "target_length": 4096}, "late"),
}
CHUNK = 256  # tokens per chunk of the chunked and late-chunked methods


def document_ids(tokenizer, n: int) -> np.ndarray:
    """The first n tokens of the SQuALITY dev stories, joined with blank lines."""
    ids: list[int] = []
    for line in (data_root() / "squality" / "dev.jsonl").read_text().splitlines():
        ids += tokenizer(json.loads(line)["document"] + "\n\n", add_special_tokens=False, verbose=False)["input_ids"]
        if len(ids) >= n:
            return np.asarray(ids[:n], dtype=np.int64)
    raise SystemExit(f"SQuALITY dev has only {len(ids)} tokens, fewer than {n}")


def forward_windows(encoder, settings: dict, kind: str, n: int) -> list[int]:
    """Token counts (special tokens and document prefix included) of every forward pass the cell runs."""
    extra = encoder.n_special + len(encoder.document_prefix_ids)
    if kind == "chunks":
        return [b - a + extra for a, b in balanced_windows(n, CHUNK)]
    if kind == "late":
        window = encoder.long_window - len(encoder.document_prefix_ids)
        return [b - a + extra for (a, b), _ in overlapping_windows(n, window, encoder.settings.late_chunk_overlap)]
    method = settings["document_method"]
    if method == "truncate":
        return [min(n, encoder.segment_window) + extra]
    size = encoder.segment_window if method == "windows" else encoder.long_window - len(encoder.document_prefix_ids)
    return [b - a + extra for a, b in balanced_windows(n, size)]


def linear_params(encoder) -> int:
    """Weights of the encoder stack's linear layers (pooler excluded: longrag pools tokens itself)."""
    return sum(m.weight.numel() for name, m in encoder.model.named_modules()
               if isinstance(m, torch.nn.Linear) and not name.startswith("pooler"))


def model_flops(encoder, windows: list[int]) -> float:
    """2·P·w for the linear layers plus 4·L·w²·d for attention, summed over the forward windows."""
    params = linear_params(encoder)
    cfg = encoder.model.config
    return float(sum(2 * params * w + 4 * cfg.num_hidden_layers * w * w * cfg.hidden_size for w in windows))
