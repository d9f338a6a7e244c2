"""Generator backends by name, and the one place a configured generator is built.

auto picks llama.cpp for a GGUF model on the CPU when llama-cpp-python is installed and the
context extension is one llama.cpp offers (measured faster: docs/results.md, "Generator
backends"); transformers otherwise (CUDA, dynamic NTK, SelfExtend, hub or folder models).
openai (an OpenAI-compatible server: generation/openai_server.py) is used only when named.
"""
from __future__ import annotations

import importlib.util

from ..errors import ConfigError
from .base import GeneratorBackend
from .generator import Generator
from .llama_cpp import EXTENSIONS as LLAMA_CPP_EXTENSIONS, LlamaCppGenerator
from .openai_server import OpenAIGenerator  # imports the openai client only when a server is used
from .weights import is_gguf
from .context_extension import ContextExtension


def _transformers(settings, extension: ContextExtension) -> GeneratorBackend:
    if settings.threads is not None:
        raise ConfigError("generator.threads sets llama.cpp's threads; the transformers backend uses torch's "
                          "(OMP_NUM_THREADS): remove generator.threads or set generator.backend: llama.cpp")
    return Generator.from_settings(settings.model, extension, settings.dtype, settings.device)


def _llama_cpp(settings, extension: ContextExtension) -> GeneratorBackend:
    if settings.device != "cpu":
        raise ConfigError(f"generator.backend 'llama.cpp' runs on the CPU here, not {settings.device!r}: "
                          "set generator.backend: transformers to use the GPU")
    return LlamaCppGenerator.from_settings(settings.model, extension, settings.threads)


def _openai(settings, extension: ContextExtension) -> GeneratorBackend:
    if not getattr(settings, "base_url", None):
        raise ConfigError("generator.backend 'openai' needs generator.base_url, the server's OpenAI API root "
                          "(e.g. http://127.0.0.1:8080/v1)")
    if extension.method != "none":
        raise ConfigError(f"generator.extension {extension.method!r} is not available with generator.backend 'openai' "
                          "(the server sets its own context): set generator.extension: none")
    return OpenAIGenerator.from_settings(settings)


BACKENDS = {"transformers": _transformers, "llama.cpp": _llama_cpp, "openai": _openai}


def chosen_backend(settings) -> str:
    """The backend a `generator` config section runs on (resolves auto; auto never picks openai, a
    server is only used when named)."""
    if settings.backend != "auto":
        return settings.backend
    fits = settings.device == "cpu" and is_gguf(settings.model) and settings.extension in LLAMA_CPP_EXTENSIONS
    return "llama.cpp" if fits and importlib.util.find_spec("llama_cpp") else "transformers"


def load_generator(settings) -> GeneratorBackend:
    """The generator a `generator` config section describes."""
    extension = ContextExtension(settings.extension, settings.factor, settings.selfextend_window, settings.selfextend_group)
    return BACKENDS[chosen_backend(settings)](settings, extension)
