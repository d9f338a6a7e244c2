"""Generator backends by name, and the one place a configured generator is built.

auto picks llama.cpp for a GGUF model on the CPU when llama-cpp-python is installed and the
context extension is one llama.cpp offers (measured faster: docs/results.md, "Generator
backends"); transformers otherwise (CUDA, dynamic NTK, SelfExtend, hub or folder models).
openai (an OpenAI-compatible server: generation/openai_server.py) is used only when named.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import replace

from ..errors import ConfigError
from .base import GeneratorBackend
from .settings import DTYPES, METHODS as EXTENSIONS, ContextExtension
from .llama_cpp import EXTENSIONS as LLAMA_CPP_EXTENSIONS, LlamaCppGenerator  # imports llama_cpp only when loading
from .openai_server import OpenAIGenerator, check_settings as check_server  # imports openai only when loading
from .weights import is_gguf


def _transformers(settings, extension: ContextExtension) -> GeneratorBackend:
    if settings.threads is not None:
        raise ConfigError("generator.threads sets llama.cpp's threads; the transformers backend uses torch's "
                          "(OMP_NUM_THREADS): remove generator.threads or set generator.backend: llama.cpp")
    # torch and transformers are imported here, when this backend is chosen: reading a config never needs them
    generator = importlib.import_module(".generator", __package__)
    return generator.TransformersGenerator.from_settings(settings.model, extension, settings.dtype, settings.device)


def _llama_cpp(settings, extension: ContextExtension) -> GeneratorBackend:
    if settings.device != "cpu":
        raise ConfigError(f"generator.backend 'llama.cpp' runs on the CPU here, not {settings.device!r}: "
                          "set generator.backend: transformers to use the GPU")
    return LlamaCppGenerator.from_settings(settings.model, extension, settings.threads)


def _openai(settings, extension: ContextExtension) -> GeneratorBackend:
    return OpenAIGenerator.from_settings(settings)  # its settings are checked there (check_server), once


BACKENDS = {"transformers": _transformers, "llama.cpp": _llama_cpp, "openai": _openai}
SERVERS = ("openai",)  # backends whose model runs elsewhere: no second model is loaded beside them


def checker_settings(gen, checker: str | None):
    """The generator section the checker (`ask.checker`) runs with; None when the generator checks its
    own answers: no checker named, the generator itself named, or a server (it checks on the server)."""
    if checker is None or checker == gen.model or gen.backend in SERVERS:
        return None
    return replace(gen, model=checker)


def check_settings(gen) -> None:
    """The one check of a `generator` config section (config.py runs it on every load); the server
    keys are the openai backend's own (openai_server.check_settings)."""
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    choices = ("auto", *BACKENDS)
    need(gen.backend in choices, f"generator.backend must be one of {', '.join(choices)}, got {gen.backend!r}")
    need(gen.extension in EXTENSIONS,
         f"generator.extension must be one of {', '.join(EXTENSIONS)}, got {gen.extension!r}")
    need(gen.factor >= 1.0, f"generator.factor must be >= 1, got {gen.factor}")
    need(gen.selfextend_window >= 1 and gen.selfextend_group >= 1, "generator.selfextend_window and "
         f"generator.selfextend_group must be >= 1, got {gen.selfextend_window}, {gen.selfextend_group}")
    need(gen.threads is None or gen.threads >= 1, f"generator.threads must be a positive integer, got {gen.threads}")
    need(gen.dtype in ("auto", *DTYPES), f"generator.dtype must be one of {', '.join(('auto', *DTYPES))}, got {gen.dtype!r}")
    need(gen.max_new_tokens >= 1, f"generator.max_new_tokens must be >= 1, got {gen.max_new_tokens}")
    check_server(gen)


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
