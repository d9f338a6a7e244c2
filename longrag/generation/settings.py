"""What a generator section's values mean, in plain Python so that a configuration is checked
without torch: the context extension and the window it gives (context_extension.py applies it to a
transformers model, llama_cpp.py to a llama.cpp one), and the transformers backend's dtypes.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

METHODS = ("none", "linear", "dynamic", "yarn", "selfextend")
SCALED = ("linear", "dynamic", "yarn")  # the methods transformers implements as rope types
# the transformers backend's dtypes (generator.py maps them to torch's); auto: float32 on the CPU, bfloat16 on CUDA
DTYPES = ("float32", "bfloat16", "float16")


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


__all__ = ["METHODS", "SCALED", "DTYPES", "ContextExtension", "effective_window"]
