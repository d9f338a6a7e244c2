"""Generation: a causal LM whose RoPE window is extended without training (rope scaling or
SelfExtend), used to answer from selected evidence and to score segment certainty."""
from .generator import Certainty, Generator
from .models import packaged_generators, resolve_generator
from .rope import ContextExtension, effective_window

__all__ = ["Generator", "Certainty", "ContextExtension", "effective_window", "resolve_generator",
           "packaged_generators"]
