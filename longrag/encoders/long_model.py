"""The model that reads long documents: the encoder's model with positions extended, then TempScale."""
from __future__ import annotations

import copy

from torch import nn

from .choices import POSITION_METHODS, ROPE_METHODS
from .positions import extend_positions
from .rope_extension import extend_rope_model
from .temperature import apply_temperature
from .tuned import tuned_rows


def build_long_model(model: nn.Module, settings, max_positions: int) -> nn.Module:
    """The encoder used for long documents: positions extended (pi/gp/rp, or RoPE ntk/dynamic/selfextend),
    then TempScale.

    `settings` is an EncoderConfig; `max_positions` the model's usable positions L_o. The input
    model is not modified (queries keep using it).
    """
    method = settings.document_method
    if method in POSITION_METHODS:
        # a folder saved by `longrag tune-positions` carries tuned PI rows
        long_model = extend_positions(model, method, settings.target_length, max_positions,
                                      keep_short=settings.keep_short_positions,
                                      rows=tuned_rows(model, method, settings.target_length, max_positions))
    elif method in ROPE_METHODS:
        long_model = extend_rope_model(model, method, settings.target_length,
                                       settings.selfextend_window, settings.selfextend_group)
    else:
        long_model = copy.deepcopy(model).eval()
    if settings.temperature != 1.0:
        apply_temperature(long_model, settings.temperature, original_length=max_positions)
    return long_model


__all__ = ["build_long_model"]
