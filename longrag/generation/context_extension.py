"""Context extension for RoPE causal LMs, without training.

linear / dynamic / yarn rescale the rotary frequencies through transformers' `rope_parameters`
(set on the config before the model is built). SelfExtend (Jin et al. 2024) keeps the trained
frequencies and instead maps far-away tokens onto grouped positions the model has seen: within
a neighbour window W a query sees exact distances; beyond it, queries sit at ⌊i/G⌋ + W − ⌊W/G⌋
and keys at ⌊j/G⌋, so the largest distance stays under the trained length L while the input
grows to (L − W)·G + W.

SelfExtend is one attention forward for every RoPE family transformers loads with separate
q/k/v/o projections (Llama, Qwen2, Mistral, Qwen3, ...): it uses the layer's own projections
(their biases included) and q/k norms, the model's rotary embedding, and the family's own
`apply_rotary_pos_emb` (so partial or interleaved rotations stay the family's).
"""
from __future__ import annotations

import inspect
import sys
from functools import partial

import torch
from torch import nn
from transformers.models.llama.modeling_llama import rotate_half

from ..errors import ConfigError
from .settings import SCALED, ContextExtension

BLOCK_ROWS = 512  # SelfExtend query rows per block (fewer when the score block would pass 2^26 values)


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


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
NORMS = ("q_norm", "k_norm", "v_norm")  # per head (Qwen3) or over the whole projection (OLMo2)


def enable_selfextend(model, extension: ContextExtension) -> None:
    """Replace the attention forward of every RoPE attention layer with SelfExtend's: one forward
    for every family with q/k/v/o projections and one rotary embedding (Llama, Qwen2, Mistral, ...)."""
    layers = [m for m in model.modules() if isinstance(getattr(m, "head_dim", None), int)
              and all(isinstance(getattr(m, p, None), nn.Module) for p in PROJECTIONS)]
    rotary = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "rotary_emb"]
    if not layers or len(rotary) != 1:
        raise ConfigError(f"selfextend needs RoPE attention with q/k/v/o projections and one rotary embedding "
                          f"(Llama, Qwen2 and alike); {type(model).__name__} has "
                          f"{'no such attention' if not layers else f'{len(rotary)} rotary embeddings'}")
    for layer in layers:  # parts this forward would silently skip
        unknown = [name for name, _ in layer.named_children() if name not in PROJECTIONS + NORMS]
        if getattr(layer, "sinks", None) is not None:
            unknown.append("sinks")
        if getattr(getattr(layer, "config", None), "attn_logit_softcapping", None):
            unknown.append("attn_logit_softcapping")
        if unknown:
            raise ConfigError(f"selfextend does not implement {', '.join(unknown)} of {type(layer).__name__} "
                              f"({type(model).__name__})")
    for layer in layers:
        rotate = partial(_rotate, rotary[0], _rope_function(layer))
        layer.forward = partial(_selfextend_attention, layer, rotate, extension.window, extension.group)


def _default_rope(q, k, cos, sin, unsqueeze_dim=1):
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def _rope_function(layer):
    """The layer's family's `apply_rotary_pos_emb(q, k, cos, sin, ...)`, else the standard rotate-half one."""
    rope = getattr(sys.modules.get(type(layer).__module__), "apply_rotary_pos_emb", None)
    try:
        if rope is not None and list(inspect.signature(rope).parameters)[:4] == ["q", "k", "cos", "sin"]:
            return rope
    except (TypeError, ValueError):
        pass
    return _default_rope


def _rotate(rotary, rope, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (batch, heads, tokens, head_dim) rotated to `positions` (batch, tokens)."""
    cos, sin = rotary(x, positions)
    dims = cos.shape[-1]  # partial rotary (StableLM, Persimmon): the dimensions past it pass unrotated
    # the key slot gets one head, whose rotation is thrown away
    rotated = rope(x[..., :dims], x[:, :1, :, :dims], cos, sin)[0]
    return rotated if dims == x.shape[-1] else torch.cat([rotated, x[..., dims:]], dim=-1)


def _project(layer, proj: str, norm: str, hidden_states: torch.Tensor) -> torch.Tensor:
    """(batch, heads, tokens, head_dim) from a projection, with the layer's norm where it has one:
    per head or over the whole projection, as its weight's width says."""
    x = getattr(layer, proj)(hidden_states)
    norm = getattr(layer, norm, None)
    width = getattr(norm, "weight", None)
    flat = width is not None and width.shape == x.shape[-1:] and x.shape[-1] != layer.head_dim
    if flat:
        x = norm(x)
    x = x.view(*hidden_states.shape[:2], -1, layer.head_dim)
    if norm is not None and not flat:
        x = norm(x)
    return x.transpose(1, 2)


def _selfextend_attention(layer, rotate, window: int, group: int, hidden_states: torch.Tensor,
                          position_embeddings=None, attention_mask=None, cache=None,
                          past_key_values=None, position_ids=None, **kwargs):
    """Exact grouped attention: neighbour and grouped scores merged in one softmax.

    Queries go in row blocks; a block scores the grouped keys only up to W before its last row
    and the neighbour keys only from W before its first row, so the work is about half a full
    causal map. The KV cache holds keys before rotation, because a key's rotation depends on how
    far the query is.
    """
    batch, length = hidden_states.shape[:2]
    device = hidden_states.device
    query = _project(layer, "q_proj", "q_norm", hidden_states) * getattr(layer, "scaling", layer.head_dim ** -0.5)
    key = _project(layer, "k_proj", "k_norm", hidden_states)
    value = _project(layer, "v_proj", "v_norm", hidden_states)
    cache = cache if cache is not None else past_key_values  # transformers renamed it in 5.2x
    if position_ids is None:  # the tokens follow what the cache holds
        past = cache.get_seq_length(layer.layer_idx) if cache is not None else 0
        position_ids = torch.arange(past, past + length, device=device)[None]
    if cache is not None:
        key, value = cache.update(key, value, layer.layer_idx)

    n_keys, heads = key.shape[2], query.shape[1]
    q_pos = position_ids.expand(batch, length)
    # keys are contiguous and end at the last query (left padding gets negative ids, masked anyway)
    k_pos = (torch.arange(n_keys, device=device) + q_pos[:, -1:] - (n_keys - 1)).clamp(min=0)
    offset = n_keys - length  # query t is key number offset + t, padded or not
    # rotate only the keys some query sees that way: grouped ones before the last W, neighbours from
    # W before the first query (shorter than W, nothing is grouped: the plain model's work)
    far_keys_end, near_keys_start = max(0, n_keys - window), max(0, offset - window + 1)
    far_keys = rotate(key[:, :, :far_keys_end], k_pos[:, :far_keys_end] // group)
    near_keys = rotate(key[:, :, near_keys_start:], k_pos[:, near_keys_start:])
    # GQA without copying keys: the query heads sharing a key head go in as extra rows
    shared = layer.num_key_value_groups
    key_heads = heads // shared

    rows = max(1, min(BLOCK_ROWS, (1 << 26) // (heads * n_keys)))
    outputs = []
    for first in range(0, length, rows):
        last = min(length, first + rows)
        part, pos = query[:, :, first:last], q_pos[:, first:last]
        far_end = max(0, offset + last - window)  # grouped keys: distance >= W for some row
        near_start = max(0, offset + first - window + 1)  # neighbour keys: distance < W for some row
        columns = torch.cat([torch.arange(far_end, device=device), torch.arange(near_start, offset + last, device=device)])
        distance = torch.arange(offset + first, offset + last, device=device)[:, None] - columns[None, :]
        grouped = torch.arange(len(columns), device=device) < far_end
        seen = torch.where(grouped, distance >= window, (distance >= 0) & (distance < window))[None, None]
        if attention_mask is not None:
            mask = attention_mask[:, :, first:last, columns]
            seen = seen & (mask if mask.dtype == torch.bool else mask == 0)

        def by_key_head(q):  # (batch, heads, n, d) -> (batch, key heads, shared * n, d)
            return q.reshape(batch, key_heads, shared * (last - first), -1)

        far_query = by_key_head(rotate(part, pos // group + window - window // group))
        far = far_query @ far_keys[:, :, :far_end].transpose(2, 3)
        near_keys_block = near_keys[:, :, near_start - near_keys_start:offset + last - near_keys_start]
        near = by_key_head(rotate(part, pos)) @ near_keys_block.transpose(2, 3)
        scores = torch.cat([far, near], dim=-1).float().view(batch, key_heads, shared, last - first, -1)
        scores = scores.masked_fill(~seen.unsqueeze(2), torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1).to(value.dtype).view(batch, key_heads, shared * (last - first), -1)
        block = (probs[..., :far_end] @ value[:, :, :far_end]
                 + probs[..., far_end:] @ value[:, :, near_start:offset + last])
        outputs.append(block.view(batch, heads, last - first, -1))
    out = torch.cat(outputs, dim=2).transpose(1, 2).reshape(batch, length, -1)
    return layer.o_proj(out), None
