"""Every supported format is read; every kind of bad file becomes a listed skip with a reason."""
import os
from pathlib import Path

import pytest

from longrag.documents import discover, load_file
from longrag.documents.loaders import UnreadableFile
from longrag.errors import InputError


def _write_pdf(path, text):
    """A real PDF with embedded TrueType text, made by matplotlib's PDF backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        figure = plt.figure(figsize=(4, 1))
        figure.text(0.1, 0.5, text)
        figure.savefig(path)
        plt.close(figure)


def test_reads_each_format(tmp_path, corpus):
    _write_pdf(corpus / "doc.pdf", "Hello longrag PDF")
    import docx

    d = docx.Document()
    d.add_paragraph("A clause about termination.")
    d.save(corpus / "contract.docx")
    files, skipped = discover([corpus])
    docs = {load_file(f, r).doc_id: load_file(f, r) for f, r in files}
    assert set(docs) == {"cats.txt", "rockets.md", "tea.html", "doc.pdf", "contract.docx"}
    assert "Hello longrag PDF" in docs["doc.pdf"].text
    assert docs["contract.docx"].text.strip() == "A clause about termination."
    assert "Green tea" in docs["tea.html"].text and "var x" not in docs["tea.html"].text
    assert skipped == []


def test_unsupported_and_hidden_files(tmp_path, corpus):
    (corpus / "image.png").write_bytes(b"\x89PNG")
    (corpus / ".hidden.txt").write_text("secret")
    files, skipped = discover([corpus])
    assert [s.reason for s in skipped] == ["unsupported format .png"]
    assert all(".hidden" not in str(f) for f, _ in files)


@pytest.mark.parametrize("name, content, reason", [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"   \n\n", "empty file"),
    ("binary.txt", b"\x00\x01\x02ELF\x00" * 50, "binary content"),
    ("corrupt.pdf", b"%PDF-1.4 this is not really a pdf", "corrupt or unreadable PDF"),
    ("corrupt.docx", b"PK\x03\x04 not a zip", "corrupt or unreadable DOCX"),
])
def test_bad_files_give_reasons(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason):
        load_file(path, tmp_path)


def test_non_utf8_text_is_decoded_and_recorded(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café contract – signed".encode("cp1252"))
    doc = load_file(path, tmp_path)
    assert doc.text == "Café contract – signed"
    assert doc.metadata["encoding"] == "cp1252"


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover([tmp_path / "nope"])


def test_utf32_with_bom_is_not_read_as_utf16(tmp_path):
    (tmp_path / "wide.txt").write_bytes("Governing law: Delaware.".encode("utf-32"))
    doc = load_file(tmp_path / "wide.txt", tmp_path)
    assert doc.text == "Governing law: Delaware." and doc.metadata["encoding"] == "utf-32"


def test_links_out_of_the_folder_fifos_bad_names_and_locked_folders_are_listed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("a file that was never meant to be indexed")
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("a real document")
    (root / "inside.txt").symlink_to(root / "a.txt")  # a link within the folder is read
    (root / "out.txt").symlink_to(outside)
    (root / "outdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(root / "pipe.txt")
    (root / os.fsdecode(b"bad\xff\xfename.txt")).write_text("bytes in the name")
    found, skipped = discover([root])
    assert sorted(f.name for f, _ in found) == ["a.txt", "inside.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "outside the folder" in reasons["out.txt"] and "not followed" in reasons["outdir"]
    assert reasons["pipe.txt"] == "not a regular file"
    assert "not valid UTF-8" in reasons["bad\\udcff\\udcfename.txt"]
    assert "out.txt" in [f.name for f, _ in discover([root], follow_links=True)[0]]


def test_an_unreadable_folder_is_listed_not_fatal(tmp_path, monkeypatch):
    # permissions do not stop root (CI may run as root), so the OS error is raised where os.walk meets it
    root = tmp_path / "docs"
    (root / "locked").mkdir(parents=True)
    (root / "a.txt").write_text("a real document")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    found, skipped = discover([root])
    assert [f.name for f, _ in found] == ["a.txt"]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [("locked", "cannot read folder: Permission denied")]
