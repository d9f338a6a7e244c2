"""Training-free context extension for encoders with rotary positions (RoPE), bidirectional attention.

- ntk: raise the base θ' = θ·λ with λ = s^(d/(d−2)), s = L_t / L_o, d = head dim (NTK-aware scaling).
- dynamic: the same with s = max(1, n / L_o) chosen per input of n tokens (short inputs exact).
- selfextend (Jin et al. 2024, "LLM Maybe LongLM"): pairs closer than W keep exact distances; farther
  pairs use grouped positions ⌊i/G⌋ + W − ⌊W/G⌋ (query) and ⌊j/G⌋ (key), mirrored for keys after the
  query since an encoder attends both ways. Reach: (L_o − W)·G + W tokens.
Assumes HF's rotate_half RoPE, a rotary module holding `inv_freq`, and position ids 0..n−1.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .choices import ROPE_METHODS

SELFEXTEND_ATTENTION = "longrag_selfextend"


def is_rotary(model: nn.Module) -> bool:
    return bool(_rotary_modules(model))


def extend_rope_model(model: nn.Module, method: str, target_length: int, window: int | None = None,
                      group: int | None = None) -> nn.Module:
    """A deep copy of a RoPE encoder that reads `target_length` tokens; the input model is untouched."""
    if method not in ROPE_METHODS:
        raise ConfigError(f"encoder.document_method must be one of {', '.join(ROPE_METHODS)} for a RoPE model, "
                          f"got {method!r}")
    if not is_rotary(model):
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ConfigError(f"encoder.document_method={method!r} needs a model with rotary positions; model type "
                          f"{kind!r} has learned absolute positions (use pi, gp or rp)")
    l_o = int(model.config.max_position_embeddings)
    if target_length is None or target_length < l_o:
        raise ConfigError(f"encoder.target_length={target_length} must be at least the model's own {l_o} positions")
    long_model = copy.deepcopy(model).eval()
    if method == "ntk":
        factor = target_length / l_o
        for module, names in _rotary_modules(long_model):
            for name in names:
                setattr(module, name, ntk_inv_freq(getattr(module, name), factor))
        _scale_config_theta(long_model.config, ntk_lambda(factor, _head_dim(long_model)))
    elif method == "dynamic":
        for module, names in _rotary_modules(long_model):
            module.register_forward_hook(_DynamicNTK(module, names, l_o), with_kwargs=True)
    else:
        _install_selfextend(long_model, l_o, target_length, window, group)
    long_model.config.max_position_embeddings = int(target_length)
    long_model.config.longrag_rope = {"method": method, "original": l_o, "target": int(target_length),
                                      "window": window, "group": group}
    long_model.longrag_max_tokens = int(target_length)
    return long_model


# -- NTK ----------------------------------------------------------------------------------------
def ntk_lambda(factor: float, head_dim: int) -> float:
    """λ = s^(d/(d−2)): the base multiplier that stretches the lowest frequency by s."""
    return float(factor) ** (head_dim / (head_dim - 2))


def ntk_inv_freq(inv_freq: torch.Tensor, factor: float) -> torch.Tensor:
    """inv_freq_k = θ^(−2k/d) → (θλ)^(−2k/d), computed from the existing frequencies (any θ)."""
    if factor == 1:
        return inv_freq.clone()
    d = 2 * inv_freq.shape[-1]
    k = torch.arange(inv_freq.shape[-1], dtype=torch.float64, device=inv_freq.device)
    lam = ntk_lambda(factor, d)
    return (inv_freq.double() * lam ** (-2 * k / d)).to(inv_freq.dtype)


class _DynamicNTK:
    """After each rotary call with n > L_o positions: cos/sin recomputed with s = n / L_o.

    Recomputing the output (instead of swapping `inv_freq`) keeps a model shared by threads safe.
    """

    def __init__(self, module: nn.Module, names: list[str], l_o: int):
        self.l_o = l_o
        self.original = {name: getattr(module, name).clone() for name in names}

    def __call__(self, module, args, kwargs, output):
        position_ids = args[1] if len(args) > 1 else kwargs["position_ids"]
        n = int(position_ids.max()) + 1
        if n <= self.l_o:
            return output
        layer_type = args[2] if len(args) > 2 else kwargs.get("layer_type")
        prefix = f"{layer_type}_" if layer_type else ""
        inv_freq = ntk_inv_freq(self.original[f"{prefix}inv_freq"], n / self.l_o).to(position_ids.device)
        scaling = getattr(module, f"{prefix}attention_scaling", 1.0)
        freqs = position_ids[..., None].float() * inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = output
        return (emb.cos() * scaling).to(cos.dtype), (emb.sin() * scaling).to(sin.dtype)


def _rotary_modules(model: nn.Module) -> list[tuple[nn.Module, list[str]]]:
    found = []
    for module in model.modules():
        names = [n for n, _ in module.named_buffers(recurse=False) if n.endswith("inv_freq") and "original" not in n]
        if names:
            found.append((module, names))
    return found


def _head_dim(model: nn.Module) -> int:
    c = model.config
    return int(getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads)


def _scale_config_theta(config, lam: float) -> None:
    """Record the new θ in the config (flat or per-layer-type rope_parameters)."""
    params = getattr(config, "rope_parameters", None)
    if not isinstance(params, dict):
        return
    groups = [params] if "rope_theta" in params else [p for p in params.values() if isinstance(p, dict)]
    for p in groups:
        if "rope_theta" in p:
            p["rope_theta"] = p["rope_theta"] * lam


# -- SelfExtend ---------------------------------------------------------------------------------
@dataclass
class _SelfExtend:
    rotary: nn.Module  # plain attribute of a dataclass: not registered as a submodule
    window: int
    group: int
    block: int = 1 << 24  # score elements per query block (bounds memory to O(block))


def _install_selfextend(model: nn.Module, l_o: int, target: int, window: int | None, group: int | None) -> None:
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

    rotary = _rotary_modules(model)
    if len(rotary) != 1 or rotary[0][1] != ["inv_freq"]:
        raise ConfigError("encoder.document_method='selfextend' supports models with one rotary table "
                          "(e.g. NomicBert, GTE, EuroBERT); this model has per-layer-type tables")
    window = int(window if window is not None else l_o // 2)
    if not 0 < window < l_o:
        raise ConfigError(f"encoder.selfextend_window={window} must be between 1 and the model's {l_o} positions")
    reach_per_group = l_o - window
    group = int(group if group is not None else max(1, math.ceil((target - window) / reach_per_group)))
    if group < 1:
        raise ConfigError(f"encoder.selfextend_group={group} must be ≥ 1")
    reach = reach_per_group * group + window
    if reach < target:
        raise ConfigError(f"encoder.selfextend_group={group} with window {window} reaches {reach} tokens, "
                          f"less than encoder.target_length={target}; use a group ≥ "
                          f"{math.ceil((target - window) / reach_per_group)}")
    AttentionInterface.register(SELFEXTEND_ATTENTION, _selfextend_attention)
    AttentionMaskInterface.register(SELFEXTEND_ATTENTION, sdpa_mask)
    spec = _SelfExtend(rotary[0][0], window, group)
    for module in model.modules():
        if hasattr(module, "scaling") and any(n in ("q_proj", "query") for n, _ in module.named_children()):
            module.longrag_selfextend = spec
    model.config._attn_implementation = SELFEXTEND_ATTENTION
    model.config.longrag_selfextend = {"window": window, "group": group, "reach": reach}


def _rotate(x: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate RoPE'd vectors x (…, n, d) by a further `delta` positions (n,), rotate_half layout."""
    freqs = delta.to(torch.float32)[:, None] * inv_freq.to(x.device, torch.float32)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def _selfextend_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Bidirectional SelfExtend over (batch, heads, n, d) RoPE'd q/k; exact SDPA when n ≤ W."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    spec: _SelfExtend = module.longrag_selfextend
    n, w, g = query.shape[2], spec.window, spec.group
    if n <= w or key.shape[2] != n:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    pos = torch.arange(n, device=query.device)
    grouped = pos // g
    shift = w - w // g
    inv_freq = spec.rotary.inv_freq
    k_far = _rotate(key, grouped - pos, inv_freq)
    q_left = _rotate(query, grouped + shift - pos, inv_freq)  # keys at j ≤ i − W
    q_right = _rotate(query, grouped - shift - pos, inv_freq)  # keys at j ≥ i + W
    batch, heads = query.shape[:2]
    step = max(1, spec.block // max(1, batch * heads * n))
    out = torch.empty_like(query)
    for a in range(0, n, step):
        b = min(n, a + step)
        dist = pos[a:b, None] - pos[None, :]  # i − j
        near = query[:, :, a:b] @ key.transpose(-1, -2)
        left = q_left[:, :, a:b] @ k_far.transpose(-1, -2)
        right = q_right[:, :, a:b] @ k_far.transpose(-1, -2)
        scores = torch.where(dist.abs() < w, near, torch.where(dist > 0, left, right)) * scaling
        if attention_mask is not None:
            m = attention_mask[..., a:b, :] if attention_mask.shape[-2] > 1 else attention_mask
            scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m
        out[:, :, a:b] = torch.softmax(scores.float(), dim=-1).to(value.dtype) @ value
    return out.transpose(1, 2).contiguous(), None


__all__ = ["extend_rope_model", "is_rotary", "ntk_lambda", "ntk_inv_freq"]
