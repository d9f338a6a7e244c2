"""TempScale: attention temperature softmax(QKᵀ/(√d·τ)) as a scale on the query projection.

Scaling Q by 1/τ equals dividing the logits by τ, so SDPA/fused kernels still run. LongEmbed's
inference variant (Zhu et al. 2024) uses 1/τ(n) = max(1, ln n / ln L_o), n = the input's length
with special tokens: inputs of ≤ L_o tokens are untouched.
"""
from __future__ import annotations

import math
import threading

import torch
from torch import nn

from ..errors import ConfigError

QUERY_NAMES = ("query", "q_proj")  # BERT family; Llama-style and RoPE encoders


def query_projections(model: nn.Module) -> list[nn.Linear]:
    return [m for name, m in model.named_modules()
            if name.rsplit(".", 1)[-1] in QUERY_NAMES and isinstance(m, nn.Linear)]


def apply_temperature(model: nn.Module, tau: float | str, original_length: int | None = None) -> nn.Module:
    """Scale attention logits by 1/τ in place: fixed τ in the weights, "log" τ by hooks."""
    if tau == "log":
        return _apply_log_temperature(model, original_length)
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0 or math.isinf(tau):
        raise ConfigError(f"encoder.temperature must be a positive number or 'log', got {tau!r}")
    if tau == 1:
        return model  # exactly the original model
    layers = _queries_or_error(model, tau)
    with torch.no_grad():
        for layer in layers:
            layer.weight.mul_(1.0 / tau)
            if layer.bias is not None:
                layer.bias.mul_(1.0 / tau)
    model.config.longrag_temperature = float(tau)
    return model


def log_scale(n: torch.Tensor | int, original_length: int) -> torch.Tensor:
    """1/τ(n) = max(1, ln n / ln L_o)."""
    n = torch.as_tensor(n, dtype=torch.float32)
    return torch.clamp(torch.log(n.clamp(min=1)) / math.log(original_length), min=1.0)


def _queries_or_error(model: nn.Module, tau) -> list[nn.Linear]:
    layers = query_projections(model)
    if not layers:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ConfigError(f"encoder.temperature={tau!r} needs separate query projections "
                          f"(modules named {' or '.join(QUERY_NAMES)}); model type {kind!r} has none")
    return layers


def _apply_log_temperature(model: nn.Module, original_length: int | None) -> nn.Module:
    layers = _queries_or_error(model, "log")
    l_o = int(original_length or model.config.max_position_embeddings)
    state = threading.local()  # one forward runs in one thread; models may be shared across threads

    def before(module, args, kwargs):
        """Per input row: its length n (from the attention mask) → a (batch, 1, 1) query scale."""
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        if ids is None:
            ids = kwargs["inputs_embeds"][..., 0]
        lengths = mask.sum(1) if mask is not None else torch.full((ids.shape[0],), ids.shape[1])
        scale = log_scale(lengths.cpu(), l_o)
        state.scale = None if bool((scale == 1).all()) else scale.view(-1, 1, 1).to(ids.device)

    def scale_query(module, inputs, output):
        scale = getattr(state, "scale", None)
        return output if scale is None else output * scale.to(output.dtype)

    model.register_forward_pre_hook(before, with_kwargs=True)
    for layer in layers:
        layer.register_forward_hook(scale_query)
    model.config.longrag_temperature = "log"
    return model


__all__ = ["apply_temperature", "log_scale", "query_projections"]
