"""Every supported format is read; every kind of bad file becomes a listed skip with a reason."""
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
