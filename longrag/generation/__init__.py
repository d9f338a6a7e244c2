"""Generation: a causal LM whose RoPE window is extended without training (rope scaling or
SelfExtend), used to answer from selected evidence and to score segments; two backends
(transformers, llama.cpp) behind one interface."""
from .backends import BACKENDS, chosen_backend, load_generator
from .base import Certainty, GeneratorBackend
from .generator import Generator
from .weights import packaged_generators, resolve_generator
from .context_extension import ContextExtension, effective_window

__all__ = ["Generator", "GeneratorBackend", "Certainty", "ContextExtension", "effective_window", "resolve_generator",
           "packaged_generators", "BACKENDS", "chosen_backend", "load_generator"]
