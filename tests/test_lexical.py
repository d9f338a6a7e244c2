"""The one BM25: stemmed for evidence, unstemmed for the index, settings saved with the index."""
from longrag.lexical import BM25, LexicalSettings, bm25_scores

TEXTS = ["The price is fixed for the first year.",
         "This Agreement renews automatically unless either party elects to terminate it.",
         "Notices shall be sent by registered mail."]


def test_stemming_matches_inflected_forms():
    # "renewal" and "terminating" find the clause that says "renews" and "terminate"
    scores = bm25_scores("Renewal or terminating?", TEXTS, LexicalSettings(stem=True))
    assert scores.argmax() == 1 and scores[0] == scores[2] == 0
    assert not bm25_scores("Renewal or terminating?", TEXTS, LexicalSettings()).any()  # unstemmed: no shared word


def test_search_drops_texts_without_a_shared_term_and_saves_its_settings(tmp_path):
    index = BM25.build(TEXTS, LexicalSettings(stem=True))
    scores, rows = index.search("registered notices", k=3)
    assert rows.tolist() == [2] and scores[0] > 0
    index.save(tmp_path / "bm25")
    again = BM25.load(tmp_path / "bm25")
    assert again.settings == LexicalSettings(stem=True)
    assert again.search("renewal", k=3)[1].tolist() == [1]
    assert BM25.build(TEXTS).search("anything", k=0)[1].tolist() == []


# ---- fields: the document's name and the section headings, weighted at query time -------------------
NAMES = ["CDDL", "MPL", "Apache"]
HEADINGS = ["9. Miscellaneous.", "8. Litigation", "6. Trademarks."]
CLAUSES = ["Any litigation relating to this License is subject to the courts of the licensor's venue.",
           "Any litigation relating to this License may be brought only where the defendant has its place of business.",
           "Use of the trade names of the Licensor is not granted."]


def test_fields_weighted_zero_score_exactly_as_plain_bm25():
    plain = bm25_scores("litigation courts license", CLAUSES, LexicalSettings())
    off = bm25_scores("litigation courts license", CLAUSES, LexicalSettings(), fields={"name": NAMES, "heading": HEADINGS},
                      weights={"name": 0, "heading": 0})
    assert plain.tolist() == off.tolist() and plain[0] > 0


def test_a_name_adds_only_to_texts_it_names_and_a_heading_only_where_it_matches():
    fields = {"name": NAMES, "heading": HEADINGS}
    plain = bm25_scores("Under the CDDL, where is litigation brought?", CLAUSES, LexicalSettings())
    named = bm25_scores("Under the CDDL, where is litigation brought?", CLAUSES, LexicalSettings(), fields=fields,
                        weights={"name": 3.0, "heading": 0})
    assert plain.argmax() == 1 and named.argmax() == 0  # "brought" favours MPL's text, the name the CDDL
    assert named[1:].tolist() == plain[1:].tolist() and named[0] > plain[0]
    headed = bm25_scores("trademarks", CLAUSES, LexicalSettings(), fields=fields, weights={"name": 0, "heading": 1.0})
    assert not bm25_scores("trademarks", CLAUSES, LexicalSettings()).any()  # "trade names" is not "trademarks"
    assert headed.argmax() == 2 and headed[:2].tolist() == [0, 0]


def test_fields_are_saved_with_their_settings_and_settings_without_them_still_load(tmp_path):
    settings = LexicalSettings(fields=("name", "heading"))
    index = BM25.build(CLAUSES, settings, {"name": NAMES, "heading": HEADINGS})
    index.save(tmp_path / "bm25")
    again = BM25.load(tmp_path / "bm25")
    assert again.settings == settings
    assert again.search("apache", k=3, weights={"name": 1.0})[1].tolist() == [2]
    (tmp_path / "bm25" / "longrag_tokenizer.json").write_text('{"stopwords": "en", "stem": false}')  # before fields
    old = BM25.load(tmp_path / "bm25")
    assert old.settings.fields == () and not old.search("apache", k=3, weights={"name": 1.0})[1].size
