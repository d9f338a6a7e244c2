"""What the name and heading fields of a segment hold (documents/headers.py)."""
from longrag.documents.headers import heading_texts, name_text


def test_a_name_is_the_words_of_the_path_and_title_without_numbers():
    assert name_text("CDDL-1.0.txt", {}) == "CDDL"
    assert name_text("acme/CybergyHoldingsInc_20140520_10-Q_Affiliate Agreement.pdf", {"title": "ABCCorp supply deal"}) \
        == "acme Cybergy Holdings Inc Q Affiliate Agreement ABC Corp supply deal"
    assert name_text("cuad-dev-20", {}) == "cuad dev"  # a dataset id's number would meet a question's amounts


def test_a_segment_lies_under_its_section_path_and_holds_the_headings_that_begin_in_it():
    headings = [[0, 1, "1. Definitions."], [50, 2, "1.1 Software"], [120, 1, "2. Governing Law."]]
    assert heading_texts(headings, [(0, 40), (40, 100), (100, 200), (200, 300)]) == [
        "1. Definitions.", "1. Definitions.\n1.1 Software", "1. Definitions.\n1.1 Software\n2. Governing Law.",
        "2. Governing Law."]
    assert heading_texts([], [(0, 10)]) == [""]
