"""The folder of uploaded files an index keeps: NAME/uploads/, each file indexed as `uploads/<file>`.

A file is received into NAME/.incoming/, checked, flushed to disk, and only then given its name in
uploads/ by one hard link (which never replaces a file that has that name: the next free name is
taken instead), so uploads/ never holds a half-written file, whenever the process dies. What a dead
server left in .incoming/ is removed at the next start; a file in uploads/ that the index does not
hold (yet) is indexed then, and an uploaded document whose file is gone is removed.

The kind of a file is read from its bytes, never from its name: PDF, Word (.docx), HTML, or UTF-8
text; the stored name keeps the given name's stem with the suffix of the kind found.
"""
from __future__ import annotations

import codecs
import os
import re
import secrets
import threading
import unicodedata
import zipfile
from pathlib import Path
from typing import BinaryIO, Container

from ..errors import InputError
from ..files import sha256_file
from ..index.layout import fsync_dir

UPLOADS = "uploads"
INCOMING = ".incoming"
MAX_NAME = 100  # characters of a stored name
CHUNK = 1 << 20
DOCUMENT_SUFFIXES = {".pdf", ".docx", ".html", ".htm", ".txt", ".md", ".markdown"}
KINDS = "a PDF, a Word document (.docx), an HTML page or a UTF-8 text file"


def kind_of(path: Path, given_suffix: str) -> str | None:
    """The suffix the loaders read a file's content with (.pdf .docx .html .md .txt), from its
    bytes; None for anything else (a spreadsheet, an image, binary data, text that is not UTF-8)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if b"%PDF-" in head[:1024]:
        return ".pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                return ".docx" if "word/document.xml" in archive.namelist() else None
        except (zipfile.BadZipFile, OSError):
            return None
    if b"\x00" in head or not _utf8(path):
        return None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in head.lower()[:1024]:
        return ".html"
    return ".md" if given_suffix in (".md", ".markdown") else ".txt"


def _utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def safe_stem(given: str) -> str:
    """The given file name reduced to a stem safe anywhere: no folders (`../../x.pdf` → `x`), no
    leading dot, no control or shell characters, at most MAX_NAME characters; `upload` if nothing is left."""
    name = unicodedata.normalize("NFC", re.split(r"[\\/]", given)[-1])
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in DOCUMENT_SUFFIXES:
        stem = name
    stem = re.sub(r"[^\w\-. ()]+", "_", stem).strip(" .")
    stem = re.sub(r"\.{2,}", ".", stem)
    return stem[:MAX_NAME].strip(" .") or "upload"


class UploadFolder:
    """NAME/uploads/ of one index; `store` is the one way a file gets in."""

    def __init__(self, index_dir: Path, max_files: int):
        self.root = Path(index_dir)
        self.folder, self.incoming = self.root / UPLOADS, self.root / INCOMING
        self.max_files = max_files
        self._naming = threading.Lock()

    @staticmethod
    def doc_id(path: Path) -> str:
        return f"{UPLOADS}/{path.name}"

    @staticmethod
    def is_upload(doc_id: str) -> bool:
        return doc_id.startswith(f"{UPLOADS}/") and "/" not in doc_id[len(UPLOADS) + 1:]

    def path_of(self, doc_id: str) -> Path:
        return self.folder / doc_id[len(UPLOADS) + 1:]

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def clean(self) -> int:
        """Remove what a dead server left half received; returns how many files went."""
        if not self.incoming.is_dir():
            return 0
        gone = 0
        for part in self.incoming.iterdir():
            part.unlink(missing_ok=True)
            gone += 1
        return gone

    def store(self, source: BinaryIO, given_name: str, taken: Container[str]) -> Path:
        """Copy an upload in under a free name; InputError (nothing kept) when its kind is not one
        longrag reads, it is empty, or the folder is full. `taken`: document ids in use."""
        if len(self.files()) >= self.max_files:
            raise InputError(f"this index already holds {self.max_files} uploaded files, the most it takes: remove "
                             "some first (or start the server with a larger --max-uploads)")
        self.incoming.mkdir(parents=True, exist_ok=True)
        part = self.incoming / f"{secrets.token_hex(8)}.part"
        try:
            with open(part, "xb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if part.stat().st_size == 0:
                raise InputError(f"{given_name!r} is empty")
            stem = safe_stem(given_name)
            kind = kind_of(part, os.path.splitext(given_name)[1].lower())
            if kind is None:
                raise InputError(f"{given_name!r} is not {KINDS} (read from its content, not its name): "
                                 "convert it to one of these first")
            return self._name(part, stem, kind, taken)
        finally:
            part.unlink(missing_ok=True)

    def _name(self, part: Path, stem: str, suffix: str, taken: Container[str]) -> Path:
        self.folder.mkdir(exist_ok=True)
        with self._naming:
            for n in range(1, 10_000):
                final = self.folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
                if self.doc_id(final) in taken:
                    continue
                try:
                    os.link(part, final)  # fails where the name is taken: never replaces a file
                except FileExistsError:
                    continue
                fsync_dir(self.folder)
                return final
        raise InputError(f"no free name for {stem}{suffix} in {self.folder}")

    def pending(self, indexed: dict[str, dict]) -> tuple[list[Path], list[str]]:
        """What the index and the folder disagree on: files to index (new or changed), and ids of
        uploaded documents whose file is gone. `indexed`: the index's documents (IndexStore.documents)."""
        files = self.files()
        names = {self.doc_id(p) for p in files}
        add = [p for p in files if indexed.get(self.doc_id(p), {}).get("sha256") != sha256_file(p)]
        gone = sorted(d for d in indexed if self.is_upload(d) and d not in names)
        return add, gone
