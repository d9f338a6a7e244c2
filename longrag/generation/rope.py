"""Context extension for RoPE causal LMs, without training.

linear / dynamic / yarn rescale the rotary frequencies through transformers' `rope_parameters`
(set on the config before the model is built). SelfExtend (Jin et al. 2024) keeps the trained
frequencies and instead maps far-away tokens onto grouped positions the model has seen: within
a neighbour window W a query sees exact distances; beyond it, queries sit at ⌊i/G⌋ + W − ⌊W/G⌋
and keys at ⌊j/G⌋, so the largest distance stays under the trained length L while the input
grows to (L − W)·G + W.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from transformers.models.llama.modeling_llama import LlamaAttention, repeat_kv, rotate_half

from ..errors import ConfigError

METHODS = ("none", "linear", "dynamic", "yarn", "selfextend")
SCALED = ("linear", "dynamic", "yarn")  # the methods transformers implements as rope types
BLOCK_ROWS = 512  # SelfExtend query rows per block (fewer when the score block would pass 2^26 values)


@dataclass(frozen=True)
class ContextExtension:
    """How to stretch a generator's window. `factor` is for linear/dynamic/yarn;
    `window` (neighbour window W) and `group` (group size G) are for selfextend."""

    method: str = "none"
    factor: float = 1.0
    window: int = 512
    group: int = 8

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"context extension method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.factor >= 1.0:
            raise ConfigError(f"context extension factor must be >= 1, got {self.factor}")
        if self.window < 1 or self.group < 1:
            raise ConfigError(f"selfextend window and group must be >= 1, got {self.window} and {self.group}")

    def describe(self) -> str:
        if self.method in SCALED:
            return f"{self.method}, factor {self.factor:g}"
        if self.method == "selfextend":
            return f"selfextend, W={self.window}, G={self.group}"
        return "none"


def effective_window(max_positions: int, extension: ContextExtension) -> int:
    """Tokens the model can attend over: L, L·factor, or (L − W)·G + W for SelfExtend."""
    if extension.method in SCALED:
        return int(max_positions * extension.factor)
    if extension.method == "selfextend":
        if extension.window >= max_positions:
            raise ConfigError(f"selfextend window {extension.window} must be below the model's {max_positions} positions")
        return (max_positions - extension.window) * extension.group + extension.window
    return max_positions


def scale_rope(config, extension: ContextExtension) -> None:
    """Write linear/dynamic/yarn rope parameters into a transformers (5.x) config, in place.

    `max_position_embeddings` stays the trained length: dynamic NTK and YaRN read it as the
    length the model was trained on.
    """
    if extension.method not in SCALED:
        return
    params = dict(getattr(config, "rope_parameters", None) or {})
    if params.get("rope_type") != "default":
        raise ConfigError(
            f"{extension.method} rope scaling needs a model with plain RoPE; this config has rope_parameters={params}"
        )
    params.update(rope_type=extension.method, factor=float(extension.factor))
    if extension.method == "yarn":
        params["original_max_position_embeddings"] = config.max_position_embeddings
    config.rope_parameters = params


def enable_selfextend(model, extension: ContextExtension) -> None:
    """Replace the attention forward of every Llama attention layer with SelfExtend's."""
    layers = [m for m in model.modules() if isinstance(m, LlamaAttention)]
    if not layers:
        raise ConfigError(f"selfextend is implemented for Llama-family attention; {type(model).__name__} has none")
    rotary = model.model.rotary_emb
    for layer in layers:
        layer.forward = partial(_selfextend_attention, layer, rotary, extension.window, extension.group)


def _rotate(x: torch.Tensor, rotary, positions: torch.Tensor) -> torch.Tensor:
    cos, sin = rotary(x, positions)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return x * cos + rotate_half(x) * sin


def _selfextend_attention(layer, rotary, window: int, group: int, hidden_states: torch.Tensor,
                          position_embeddings=None, attention_mask=None, cache=None,
                          past_key_values=None, position_ids=None, **kwargs):
    """Exact grouped attention: neighbour and grouped scores merged in one softmax.

    Queries go in row blocks; a block scores the grouped keys only up to W before its last row
    and the neighbour keys only from W before its first row, so the work is about half a full
    causal map. The KV cache holds keys before rotation, because a key's rotation depends on how
    far the query is.
    """
    batch, length = hidden_states.shape[:2]
    shape = (batch, length, -1, layer.head_dim)
    query = layer.q_proj(hidden_states).view(shape).transpose(1, 2) * layer.scaling
    key = layer.k_proj(hidden_states).view(shape).transpose(1, 2)
    value = layer.v_proj(hidden_states).view(shape).transpose(1, 2)
    cache = cache if cache is not None else past_key_values  # transformers renamed it in 5.2x
    if cache is not None:
        key, value = cache.update(key, value, layer.layer_idx)
    key, value = repeat_kv(key, layer.num_key_value_groups), repeat_kv(value, layer.num_key_value_groups)

    n_keys, device = key.shape[2], key.device
    q_pos = position_ids.expand(batch, length)
    # keys are contiguous and end at the last query (left padding gets negative ids, masked anyway)
    k_pos = (torch.arange(n_keys, device=device) + q_pos[:, -1:] - (n_keys - 1)).clamp(min=0)
    near_keys = _rotate(key, rotary, k_pos)
    far_keys = _rotate(key, rotary, k_pos // group)

    offset = n_keys - length  # query t is key number offset + t, padded or not
    rows = max(1, min(BLOCK_ROWS, (1 << 26) // (query.shape[1] * n_keys)))
    outputs = []
    for first in range(0, length, rows):
        last = min(length, first + rows)
        part, pos = query[:, :, first:last], q_pos[:, first:last]
        far_end = max(0, offset + last - window)  # grouped keys: distance >= W for some row
        near_start = max(0, offset + first - window + 1)  # neighbour keys: distance < W for some row
        columns = torch.cat([torch.arange(far_end, device=device), torch.arange(near_start, offset + last, device=device)])
        distance = torch.arange(offset + first, offset + last, device=device)[:, None] - columns[None, :]
        grouped = torch.arange(len(columns), device=device) < far_end
        seen = torch.where(grouped, distance >= window, (distance >= 0) & (distance < window))
        if attention_mask is not None:
            mask = attention_mask[:, :, first:last, columns]
            seen = seen & (mask if mask.dtype == torch.bool else mask == 0)
        far = _rotate(part, rotary, pos // group + window - window // group) @ far_keys[:, :, :far_end].transpose(2, 3)
        near = _rotate(part, rotary, pos) @ near_keys[:, :, near_start:offset + last].transpose(2, 3)
        scores = torch.cat([far, near], dim=-1).float().masked_fill(~seen, torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1).to(value.dtype)
        outputs.append(probs[..., :far_end] @ value[:, :, :far_end]
                       + probs[..., far_end:] @ value[:, :, near_start:offset + last])
    out = torch.cat(outputs, dim=2).transpose(1, 2).reshape(batch, length, -1)
    return layer.o_proj(out), None
