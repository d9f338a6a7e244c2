"""Training-free extension of learned absolute position tables (LongEmbed, Zhu et al. 2024).

L_o = the model's own positions, L_t = target length, s = L_t / L_o. The new rows are:
  PI: E_t[i] = linear interpolation of E_o at i·(L_o−1)/(L_t−1)
  GP: E_t[i] = E_o[⌊i/s⌋]        (grouped positions, built as a table: no forward patching)
  RP: E_t[i] = E_o[i mod L_o]   (recurrent positions)
With `keep_short` (the default) the original rows stay in the table and a pre-hook routes each
input of ≤ L_o tokens to them, so short inputs get exactly the original embedding (PI rows do
not hit original rows in general); longer inputs use the new rows. PI rows hurt short documents,
so this is the safe default; `keep_short=False` gives the plain method everywhere.
`long_model.build_long_model` combines these tables with the RoPE methods and TempScale.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError
from .choices import POSITION_METHODS

MAX_TARGET_LENGTH = 131072


def extend_positions(model: nn.Module, method: str, target_length: int | None, max_positions: int | None = None,
                     *, keep_short: bool = True, rows: torch.Tensor | None = None) -> nn.Module:
    """A deep copy of a BERT-family model whose position table reads `target_length` tokens.

    `rows` replaces the computed extended rows (e.g. a table tuned by `longrag tune-positions`).
    """
    if method not in POSITION_METHODS:
        raise ConfigError(f"encoder.document_method must be one of {', '.join(POSITION_METHODS)} "
                          f"to extend positions, got {method!r}")
    table = _position_table(model, method)
    rows_o = table.num_embeddings
    l_o = int(max_positions or rows_o)
    offset = rows_o - l_o  # RoBERTa-style models reserve padding_idx + 1 rows before position 0
    if offset < 0:
        raise ConfigError(f"model has {rows_o} position rows, fewer than max_positions={l_o}")
    if target_length is None:
        raise ConfigError(f"encoder.target_length is required for encoder.document_method={method!r} "
                          f"(the model reads {l_o} tokens)")
    if target_length < l_o:
        raise ConfigError(f"encoder.target_length={target_length} is below the model's own {l_o} positions")
    if target_length > MAX_TARGET_LENGTH:
        raise ConfigError(
            f"encoder.target_length={target_length} exceeds {MAX_TARGET_LENGTH}: full attention over n tokens "
            f"holds n² scores per head (~{4 * target_length ** 2 / 2 ** 30:.0f} GiB per head in fp32 at this length)"
        )

    long_model = copy.deepcopy(model).eval()
    emb = long_model.embeddings
    old = emb.position_embeddings.weight.detach()
    new_rows = _new_rows(old[offset: offset + l_o], method, target_length) if rows is None else rows.to(old.device)
    if new_rows.shape != (target_length, old.shape[1]):
        raise ConfigError(f"extended position rows have shape {tuple(new_rows.shape)}, expected "
                          f"({target_length}, {old.shape[1]})")
    base = old if keep_short else old[:offset]
    weight = torch.cat([base, new_rows.to(old.dtype)], dim=0)
    padding_idx = emb.position_embeddings.padding_idx
    emb.position_embeddings = nn.Embedding(weight.shape[0], weight.shape[1], padding_idx=padding_idx,
                                           device=old.device, dtype=old.dtype)
    emb.position_embeddings.weight.data.copy_(weight)
    rows = weight.shape[0]
    device = old.device
    emb.position_ids = torch.arange(rows, device=device).expand((1, -1))
    if hasattr(emb, "token_type_ids"):
        emb.token_type_ids = torch.zeros((1, rows), dtype=torch.long, device=device)
    long_model.config.max_position_embeddings = rows
    long_model.config.longrag_positions = {"method": method, "original": l_o, "target": int(target_length),
                                           "keep_short": keep_short, "tuned": rows is not None}
    long_model.longrag_max_tokens = int(target_length)  # tokens per input, special tokens included
    if keep_short:
        long_model.register_forward_pre_hook(_Router(l_o, rows_o, offset, int(target_length), rows), with_kwargs=True)
    else:
        long_model.register_forward_pre_hook(_LengthGuard(int(target_length)), with_kwargs=True)
    return long_model


def _position_table(model: nn.Module, method: str) -> nn.Embedding:
    """The learned absolute position table, or a ConfigError naming the setting."""
    config = getattr(model, "config", None)
    kind = getattr(config, "position_embedding_type", "absolute")
    rotary = any(name.endswith("inv_freq") for name, _ in model.named_buffers())
    table = getattr(getattr(model, "embeddings", None), "position_embeddings", None)
    if rotary or kind not in (None, "absolute") or not isinstance(table, nn.Embedding):
        what = "rotary positions" if rotary else f"position_embedding_type={kind!r}"
        name = getattr(config, "model_type", type(model).__name__)
        raise ConfigError(
            f"encoder.document_method={method!r} needs learned absolute positions (BERT family); model type "
            f"{name!r} uses {what if table is not None or rotary else 'no learned position table'}"
            + ("; use a RoPE method (ntk, dynamic, selfextend) instead" if rotary else "")
        )
    return table


def _new_rows(original: torch.Tensor, method: str, target: int) -> torch.Tensor:
    l_o = original.shape[0]
    i = torch.arange(target, device=original.device)
    if method == "pi":
        x = i.double() * (l_o - 1) / max(target - 1, 1)
        lo = x.floor().long().clamp(max=l_o - 1)
        hi = (lo + 1).clamp(max=l_o - 1)
        frac = (x - lo.double()).unsqueeze(1)
        return ((1 - frac) * original[lo].double() + frac * original[hi].double()).to(original.dtype)
    if method == "gp":
        return original[(i * l_o) // target]  # ⌊i/s⌋ with s = target / l_o, in integers
    return original[i % l_o]  # rp


def _input_ids_and_mask(args, kwargs):
    input_ids = kwargs.get("input_ids", args[0] if args else None)
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    embeds = kwargs.get("inputs_embeds")
    shape = input_ids.shape if input_ids is not None else embeds.shape[:-1]
    return shape, mask, (input_ids if input_ids is not None else embeds).device


class _LengthGuard:
    """Refuse inputs longer than the extended table instead of an index error deep in torch."""

    def __init__(self, target: int):
        self.target = target

    def __call__(self, module, args, kwargs):
        shape, _, _ = _input_ids_and_mask(args, kwargs)
        if shape[1] > self.target:
            raise ValueError(f"input of {shape[1]} tokens exceeds the extended length {self.target}")
        return None


class _Router(_LengthGuard):
    """Per row: ≤ L_o tokens → original position ids; longer → the extended rows (offset rows_o)."""

    def __init__(self, l_o: int, rows_o: int, offset: int, target: int, rows: int):
        super().__init__(target)
        self.l_o, self.rows_o, self.offset, self.rows = l_o, rows_o, offset, rows

    def __call__(self, module, args, kwargs):
        super().__call__(module, args, kwargs)
        shape, mask, device = _input_ids_and_mask(args, kwargs)
        batch, width = shape
        if width <= self.l_o or kwargs.get("position_ids") is not None:
            return None  # the unmodified model's own path, bit for bit
        lengths = mask.sum(1) if mask is not None else torch.full((batch,), width, device=device)
        steps = torch.arange(width, device=device).expand(batch, -1)
        short = self.offset + steps
        long = self.rows_o + steps
        ids = torch.where((lengths <= self.l_o).unsqueeze(1), short, long).clamp(max=self.rows - 1)
        return args, {**kwargs, "position_ids": ids}


__all__ = ["extend_positions", "MAX_TARGET_LENGTH"]
