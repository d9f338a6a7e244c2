"""Read supported files into Documents; anything unusable becomes a Skipped with a reason.

A bad file never stops a run: it is listed in the summary and the rest are indexed.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..files import sha256_file
from ..types import Document, Skipped
from .locations import LOCATIONS_VERSION, markdown_headings, numbered_clauses
from .pdf import Unreadable, read_pdf


class UnreadableFile(Exception):
    """Raised by a reader; the message becomes the Skipped reason."""


@dataclass(frozen=True)
class ReadOptions:
    """How files are read: `ocr` (index.ocr: auto | off | force, for PDFs), `progress` bars on long
    work (OCR), `name` the file shown in them."""

    ocr: str = "auto"
    progress: bool = False
    name: str = ""


def discover(paths: Iterable[str | Path], follow_links: bool = False) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Expand files and folders into (file, root) pairs, sorted; everything not read is listed
    with its reason (unsupported format, not a regular file, a link leading out of the folder,
    an unreadable folder, a name that is not UTF-8).

    The root is the folder a file was found under, so doc ids are stable relative paths. Links are
    followed only to files inside the root unless `follow_links`.
    """
    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"path {path} does not exist")
        if path.is_file():
            candidates, root = [path], path.parent
        else:
            root = path
            candidates = _walk(path, follow_links, skipped)
        for file in candidates:
            reason = _not_readable(file, root, follow_links)
            if reason:
                skipped.append(Skipped(_shown(file), reason))
            elif file.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((file, root))
            else:
                skipped.append(Skipped(_shown(file), f"unsupported format {file.suffix or '(no extension)'}"))
    return found, skipped


def _walk(root: Path, follow_links: bool, skipped: list[Skipped]) -> list[Path]:
    """Every non-hidden entry below root that is not a folder, sorted."""
    def unreadable(error: OSError) -> None:
        skipped.append(Skipped(_shown(Path(error.filename)), f"cannot read folder: {error.strerror}"))

    out = []
    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=follow_links):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for d in dirs:
            if not follow_links and (base / d).is_symlink():
                skipped.append(Skipped(_shown(base / d), "link to a folder, not followed (--follow-links reads it)"))
        out += [base / f for f in files if not f.startswith(".")]
    return sorted(out)


def _not_readable(file: Path, root: Path, follow_links: bool) -> str | None:
    try:
        str(file).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8: rename it to index it"
    if file.is_symlink() and not follow_links and not file.resolve().is_relative_to(root.resolve()):
        return "link to a file outside the folder, not followed (--follow-links reads it)"
    if not file.is_file():
        return "not a regular file" if file.exists() else "broken link"
    return None


def _shown(path: Path) -> str:
    """A path printable whatever bytes its name holds (undecodable bytes as \\udcXX escapes)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def content_sha256(path: Path) -> str:
    """sha256 of the file's bytes (what `load_file` records) without extracting its text; raises
    UnreadableFile for a file that cannot be read or is empty."""
    try:
        if path.stat().st_size == 0:
            raise UnreadableFile("empty file")
        return sha256_file(path)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None


def load_file(path: Path, root: Path, options: ReadOptions = ReadOptions()) -> Document:
    """Read one file; raises UnreadableFile with a reason a user can act on."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise UnreadableFile("empty file")
    suffix = path.suffix.lower()
    metadata: dict = {"format": suffix.lstrip("."), "bytes": len(data), "locations": LOCATIONS_VERSION}
    doc_id = path.relative_to(root).as_posix()
    text = LOADERS[suffix](data, metadata, replace(options, name=options.name or doc_id))
    if not text.strip():
        raise UnreadableFile("no text content")
    sha = hashlib.sha256(data).hexdigest()
    return Document(doc_id=doc_id, path=str(path.resolve()), text=text, sha256=sha, metadata=metadata)


def _decode(data: bytes, metadata: dict) -> str:
    head = data[:8192]
    for bom, encoding in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                          (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):  # UTF-32's BOM starts like UTF-16's
        if data.startswith(bom):
            metadata["encoding"] = encoding
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise UnreadableFile(f"not valid {encoding.upper()} despite its byte-order mark ({exc.reason})") from None
    if b"\x00" in head:
        raise UnreadableFile("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Not UTF-8: legacy Windows text is the common case; latin-1 decodes anything. Recorded, not hidden.
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        metadata["encoding"] = encoding
        if sum(not (c.isprintable() or c.isspace()) for c in text[:4096]) > 0.1 * min(len(text), 4096):
            raise UnreadableFile("binary content in a text file")
        return text
    raise UnreadableFile("undecodable text")  # unreachable: latin-1 decodes all bytes


_HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}


def _html_text(data: bytes, metadata: dict, options: ReadOptions) -> str:
    """The text `soup.get_text("\n")` gives, one stripped line per line, and the offsets of the
    h1–h6 headings in it: both from one pass over the strings, so they agree."""
    from bs4 import BeautifulSoup, CData, NavigableString

    html = _decode(data, metadata)
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    if soup.title and soup.title.string and soup.title.string.strip():
        metadata["title"] = " ".join(soup.title.string.split())
    lines, headings, offset, seen = [], [], 0, set()
    for string in soup.descendants:
        if type(string) not in (NavigableString, CData):  # what get_text reads: no comments or doctypes
            continue
        heading = string.find_parent(list(_HEADING_LEVELS))
        for line in string.splitlines():
            line = line.strip()
            if not line:
                continue
            if heading is not None and id(heading) not in seen:
                seen.add(id(heading))
                headings.append([offset, _HEADING_LEVELS[heading.name], " ".join(heading.get_text(" ").split())])
            lines.append(line)
            offset += len(line) + 1
    metadata["headings"] = headings
    return "\n".join(lines)


def _pdf_text(data: bytes, metadata: dict, options: ReadOptions) -> str:
    try:
        text = read_pdf(data, metadata, options.ocr, options.progress, options.name)
    except Unreadable as exc:
        raise UnreadableFile(str(exc)) from None
    if not text.strip():
        pages = metadata.get("pages", 0)
        if options.ocr == "off":
            raise UnreadableFile(f"PDF has no text layer on any of its {pages} pages (a scan?) and index.ocr is off: "
                                 "set index.ocr: auto to read it by OCR")
        raise UnreadableFile(f"PDF has no readable text on any of its {pages} pages: "
                             + "; ".join(metadata.get("notes", ["OCR found no legible text"])))
    return text


def _docx_text(data: bytes, metadata: dict, options: ReadOptions) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise UnreadableFile(f"corrupt or unreadable DOCX ({type(exc).__name__})") from None
    except Exception as exc:  # zipfile.BadZipFile and lxml errors surface here
        raise UnreadableFile(f"corrupt or unreadable DOCX ({type(exc).__name__})") from None
    parts, headings, offset = [], [], 0
    for paragraph in document.paragraphs:
        level = _docx_heading_level(paragraph)
        if level == 0 and paragraph.text.strip():
            metadata.setdefault("title", " ".join(paragraph.text.split()))
        elif level and paragraph.text.strip():
            headings.append([offset, level, " ".join(paragraph.text.split())])
        parts.append(paragraph.text)
        offset += len(paragraph.text) + 1
    metadata["headings"] = headings
    if document.core_properties.title and document.core_properties.title.strip():
        metadata["title"] = " ".join(document.core_properties.title.split())
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _docx_heading_level(paragraph) -> int | None:
    """1–9 for Word's "Heading N" styles, 0 for "Title", None for any other paragraph."""
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name == "Title":
        return 0
    match = re.fullmatch(r"Heading (\d)", name)
    return int(match.group(1)) if match else None


def _markdown_text(data: bytes, metadata: dict, options: ReadOptions) -> str:
    text = _decode(data, metadata)
    metadata["headings"] = markdown_headings(text)
    return text


def _plain_text(data: bytes, metadata: dict, options: ReadOptions) -> str:
    text = _decode(data, metadata)
    metadata["headings"] = numbered_clauses(text)
    return text


# file suffix → reader (bytes, metadata to fill in) → text: the one place a format is named
LOADERS = {".txt": _plain_text, ".md": _markdown_text, ".markdown": _markdown_text, ".html": _html_text, ".htm": _html_text,
           ".pdf": _pdf_text, ".docx": _docx_text}
SUPPORTED_SUFFIXES = tuple(LOADERS)
