"""What the rest of longrag uses of an encoder: the `Encoder` protocol."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from ..types import TokenizedText

# `EncoderConfig` in annotations is longrag.config's; not imported, as config.py reads the encoders' method names


class Encoder(Protocol):
    """Every member that code outside the encoder uses (`TransformerEncoder` implements them all).

    Indexing, search and the evidence selectors use the first group, which test fakes implement too;
    late chunking, position tuning and the encoder cost estimates also reach the transformer
    underneath through the second.
    """

    name: str
    dim: int  # vector width (after a Matryoshka cut)
    window: int  # content tokens per forward pass of the original model (special tokens excluded)

    @property
    def segment_window(self) -> int: ...  # content tokens of a segment, once the document prefix is added

    @property
    def long_window(self) -> int: ...  # content tokens per forward pass of the long-document model

    def tokenize(self, text: str) -> TokenizedText: ...
    def count_tokens(self, text: str) -> int: ...
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_ids(self, batch: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> np.ndarray: ...
    def encode_document(self, ids: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray: ...
    def truncated_tokens(self, n_tokens: int) -> int: ...
    def describe(self) -> dict: ...

    # -- the transformer underneath ---------------------------------------------------------------
    settings: EncoderConfig
    path: Path  # the model folder
    tokenizer: Any  # a fast transformers tokenizer
    model: nn.Module  # the unmodified model: queries and segments
    long_model: nn.Module | None  # extended positions and/or TempScale, for whole documents
    full_dim: int  # the model's hidden size, before a Matryoshka cut
    max_positions: int  # usable positions of the original model, special tokens included
    n_special: int  # special tokens around every input
    head_ids: list[int]  # special tokens before content (e.g. [CLS])
    tail_ids: list[int]  # special tokens after content (e.g. [SEP])
    document_prefix_ids: list[int]  # put before every document input (e.g. E5's `passage: `)

    @property
    def head_length(self) -> int: ...

    def token_states_batch(self, batch: Sequence[np.ndarray], model: nn.Module | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def encode_inputs(self, ids: Sequence[np.ndarray], model: nn.Module, progress: Callable[[int], None] | None = None) -> np.ndarray: ...
    def autocast(self) -> contextlib.AbstractContextManager: ...


__all__ = ["Encoder"]
