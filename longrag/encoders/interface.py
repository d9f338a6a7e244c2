"""What the rest of longrag uses of an encoder: the `Encoder` protocol."""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from ..types import TokenizedText


class Encoder(Protocol):
    """What an encoder must provide: every member that indexing, search, the evidence selectors,
    the contextual headers and the LangChain embeddings call (`TransformerEncoder` implements it,
    and so do the test fakes).

    The transformer underneath (model, tokenizer, special tokens, token states) is not part of it:
    `index.mode: late_chunks` (`late_chunking.py`), position tuning and the encoder cost estimates
    read those members of a `TransformerEncoder` itself.
    """

    dim: int  # vector width (after a Matryoshka cut)

    @property
    def segment_window(self) -> int: ...  # content tokens of a segment, once the document prefix is added

    def tokenize(self, text: str) -> TokenizedText: ...
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_ids(self, batch: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> np.ndarray: ...
    def encode_document(self, ids: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray: ...
    def truncated_tokens(self, n_tokens: int) -> int: ...  # tokens of an n-token document its document vector does not read
    def describe(self) -> dict: ...  # what the manifest records: the model and the settings that change vectors


__all__ = ["Encoder"]
