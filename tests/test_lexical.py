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
