"""An index folder on disk: immutable shards, generations that list them, a pointer to the live
generation, one writer at a time.

    NAME/
      CURRENT          the live generation's folder name; replaced atomically (os.replace)
      .lock            held (flock) by the one process writing; the OS releases it when that process dies
      g000004/         manifest.json: settings, counts, and the shards with their tombstones
      g000005.tmp/     a run in progress, or debris of a dead one (the next writer removes it)
      shards/s000009/  documents, vectors, vector indexes, BM25 counts (shard.py) — never changed once written

An update writes only new shards (what changed) and a new manifest; a merge writes one shard from
several. A reader resolves CURRENT once and opens that generation's shards together, so it never
mixes two runs; the path always names one complete generation, because publishing is one rename
of CURRENT. Shards and generations no live manifest lists are removed by the next writer.
Indexes written before shards (format 1) are converted by their next update.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import IndexBusyError, IndexNotFoundError, InputError

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
LOCK = ".lock"
SHARDS = "shards"
LEGACY_FILES = (MANIFEST, "store.sqlite", "segments.faiss", "documents.faiss", "bm25")  # format 1: FAISS only
_GENERATION = re.compile(r"^g(\d{6,})$")
_PENDING = re.compile(r"^g\d{6,}\.tmp$")
_SHARD = re.compile(r"^s(\d{6,})(\.tmp)?$")


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


def superseded(generation: Path, path: Path) -> bool:
    """Whether a writer has published another generation since `generation` was read: its files may
    be disappearing (a folder being removed still exists until its last file is gone)."""
    try:
        return not generation.is_dir() or live_generation(path) != generation
    except IndexNotFoundError:
        return False


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
    entries = sorted(p.name for p in path.iterdir() if not _ours(p.name, path))  # a first run that died left these
    if entries:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise InputError(f"{path} is not a longrag index and not empty (it holds {shown}); nothing was changed: "
                         "choose another --index or an empty folder")


def _ours(name: str, folder: Path | None = None) -> bool:
    if name == SHARDS and folder is not None:  # a first run that died after writing shards
        return (folder / name).is_dir() and all(_SHARD.match(p.name) for p in (folder / name).iterdir())
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


@contextmanager
def writing(path: Path, wait: bool = False):
    """Hold `path` for one writing run: only an index, an empty folder or a new path may be written;
    one writer at a time (writer_lock); debris of dead runs goes first. A folder this run created
    is removed again if the run publishes nothing."""
    check_target(path)
    created = not os.path.lexists(path)
    with writer_lock(path, wait):
        try:
            remove_debris(path)
            yield
        finally:
            if created and not is_index(path):
                shutil.rmtree(path, ignore_errors=True)


def new_generation(path: Path) -> Path:
    """A fresh, empty folder for the next generation (call with the writer lock held)."""
    numbers = [int(m.group(1)) for p in path.iterdir() if (m := _GENERATION.match(p.name))]
    pending = path / f"g{max(numbers, default=0) + 1:06d}.tmp"
    pending.mkdir()
    return pending


def new_shard(path: Path) -> Path:
    """The path of the next shard (call with the writer lock held); the caller creates it."""
    folder = path / SHARDS
    folder.mkdir(exist_ok=True)
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _SHARD.match(p.name))]
    return folder / f"s{max(numbers, default=0) + 1:06d}.tmp"


def publish(path: Path, pending: Path) -> Path:
    """Make a complete pending generation the live one, then remove what it replaced.

    Open readers keep their files: on POSIX a removed file stays readable through an open handle.
    """
    fsync_tree(pending)
    final = pending.with_name(pending.name.removesuffix(".tmp"))
    os.rename(pending, final)
    pointer = path / f"{CURRENT}.tmp"
    with open(pointer, "w") as handle:
        handle.write(final.name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, path / CURRENT)
    fsync_dir(path)
    remove_debris(path)
    return final


def remove_debris(path: Path) -> int:
    """Remove pending generations of dead runs, replaced generations, shards no live generation
    lists, old-layout files, and the old layout's swap folders beside the index (call with the
    writer lock held). Generations go before shards, so a reader that finds a shard missing finds
    its generation gone too and retries with the new one. Returns how many entries went."""
    live = live_generation(path).name if (path / CURRENT).is_file() else None
    removed = _remove_stale(path, live)
    if (path / SHARDS).is_dir():
        listed = _listed_shards(path / live) if live is not None else set()
        for entry in (path / SHARDS).iterdir() if listed is not None else ():
            if _SHARD.match(entry.name) and entry.name not in listed:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def _listed_shards(generation: Path) -> set[str] | None:
    try:
        manifest = json.loads((generation / MANIFEST).read_text())
    except (OSError, ValueError):
        return None  # unreadable: keep every shard
    return {entry["name"] for entry in manifest.get("shards", [])}


def _remove_stale(path: Path, live: str | None) -> int:
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




def fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
