"""Shared fixtures. The fake encoder is deterministic and fast: hashed bag-of-words vectors."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from longrag.encoders.base import TokenizedText, balanced_windows

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "examples" / "contracts"
DATA = REPO.parent / "shared" / "data"


class FakeEncoder:
    """Same interface as TransformerEncoder; a word's vector is seeded by its hash."""

    name = "fake-hash"
    dim = 64
    window = 64
    segment_window = 64
    long_window = 64

    def __init__(self, fail_after_calls: int | None = None):
        self.calls = 0
        self.encoded_tokens = 0
        self.fail_after_calls = fail_after_calls

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.lower().encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

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
            v += np.random.default_rng(int(i)).standard_normal(self.dim).astype(np.float32)
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
        return {"model": self.name, "dim": self.dim, "window": self.window}


@pytest.fixture
def fake_encoder():
    return FakeEncoder()


@pytest.fixture
def corpus(tmp_path):
    """A few small real-looking documents in a temp folder."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "cats.txt").write_text("Cats are small domesticated felines. They purr and hunt mice. " * 20)
    (root / "rockets.md").write_text("# Rockets\n\nRockets burn propellant to produce thrust in space. " * 20)
    (root / "tea.html").write_text("<html><body><h1>Tea</h1><p>Green tea is brewed from unoxidised leaves.</p>"
                                   "<script>var x = 1;</script></body></html>")
    return root
