"""An index folder on disk: immutable generations, a pointer to the live one, one writer at a time.

    NAME/
      CURRENT        the live generation's folder name; replaced atomically (os.replace)
      .lock          held (flock) by the one process writing; the OS releases it when that process dies
      g000004/       manifest.json, store.sqlite, segments.faiss, ... — never changed once published
      g000005.tmp/   a run in progress, or debris of a dead one (the next writer removes it)

A reader resolves CURRENT once and opens that generation's files together, so it never mixes two
runs; the path always names one complete generation, because publishing is one rename of CURRENT.
Indexes written before generations existed (manifest.json directly in NAME/) are read as they are
and converted by their next update.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import IndexBusyError, IndexNotFoundError, InputError

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
LOCK = ".lock"
LEGACY_FILES = (MANIFEST, "store.sqlite", "segments.faiss", "documents.faiss", "bm25")
_GENERATION = re.compile(r"^g(\d{6,})$")
_PENDING = re.compile(r"^g\d{6,}\.tmp$")


def is_index(path: Path) -> bool:
    return (path / CURRENT).is_file() or (path / MANIFEST).is_file()


def live_generation(path: Path) -> Path:
    """The folder holding the live generation's files (the index folder itself for the old layout)."""
    try:
        name = (path / CURRENT).read_text().strip()
    except FileNotFoundError:
        if (path / MANIFEST).is_file():
            return path
        raise IndexNotFoundError(f"no longrag index at {path}") from None
    except (NotADirectoryError, UnicodeDecodeError) as exc:
        raise IndexNotFoundError(f"no longrag index at {path} ({exc})") from None
    if not _GENERATION.match(name):
        raise IndexNotFoundError(f"index {path} is damaged: {CURRENT} names {name[:40]!r}, not a generation; "
                                 "re-index into a new --index")
    return path / name


def check_target(path: Path) -> None:
    """Refuse to write an index over anything that is not one: only a longrag index, an empty
    folder or a new path may become an index. Nothing is touched."""
    if not os.path.lexists(path):
        blocking = next((p for p in path.parents if os.path.lexists(p) and not p.is_dir()), None)
        if blocking is not None:
            raise InputError(f"{blocking} exists and is not a folder, so {path} cannot be made; nothing was changed: "
                             "choose another --index")
        return
    if not path.is_dir():
        raise InputError(f"{path} exists and is not a folder; nothing was changed: choose another --index")
    if is_index(path):
        return
    entries = sorted(p.name for p in path.iterdir() if not _ours(p.name))  # a first run that died left these
    if entries:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise InputError(f"{path} is not a longrag index and not empty (it holds {shown}); nothing was changed: "
                         "choose another --index or an empty folder")


def _ours(name: str) -> bool:
    return name in (LOCK, f"{CURRENT}.tmp") or bool(_PENDING.match(name))


@contextmanager
def writer_lock(path: Path, wait: bool = False):
    """Hold the index's writer lock for the block. Another live writer → IndexBusyError naming it
    (or block until it is done with `wait`)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise IndexBusyError(f"index {path} is being written by process {holder}; "
                                 "wait for it to finish or pass --wait") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def new_generation(path: Path) -> Path:
    """A fresh, empty folder for the next generation (call with the writer lock held)."""
    numbers = [int(m.group(1)) for p in path.iterdir() if (m := _GENERATION.match(p.name))]
    pending = path / f"g{max(numbers, default=0) + 1:06d}.tmp"
    pending.mkdir()
    return pending


def publish(path: Path, pending: Path) -> Path:
    """Make a complete pending generation the live one, then remove what it replaced.

    Open readers keep their files: on POSIX a removed file stays readable through an open handle.
    """
    _fsync_tree(pending)
    final = pending.with_name(pending.name.removesuffix(".tmp"))
    os.rename(pending, final)
    pointer = path / f"{CURRENT}.tmp"
    with open(pointer, "w") as handle:
        handle.write(final.name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, path / CURRENT)
    _fsync_dir(path)
    remove_debris(path)
    return final


def remove_debris(path: Path) -> int:
    """Remove pending generations of dead runs, replaced generations and old-layout files, and
    the old layout's swap folders beside the index (call with the writer lock held).
    Returns how many entries went."""
    live = live_generation(path).name if (path / CURRENT).is_file() else None
    removed = 0
    for entry in path.iterdir():
        name = entry.name
        stale = _ours(name) and name != LOCK
        if live is not None:  # with the old layout every file here may still be the live index
            stale = stale or name in LEGACY_FILES or bool(_GENERATION.match(name)) and name != live
        if not stale:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if live is not None and path.parent.is_dir():
        for entry in path.parent.iterdir():
            if entry.name.startswith((f".{path.name}.tmp-", f".{path.name}.old-")) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
