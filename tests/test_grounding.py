"""Grounded answers: citations are the blocks an answer cites, checked to exist, and quoted phrases
are checked against the cited blocks; whatever fails is flagged, never dropped silently."""
from longrag.reasoning.answer import NOT_FOUND, Answer, grounding, quoted
from longrag.types import Evidence

TRADEMARKS = ("6. Trademarks. This License does not grant permission to use the trade names, trademarks, "
              "service marks, or product names of the Licensor")
WARRANTY = "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND"
BLOCKS = [Evidence("Apache-2.0.txt", "/c/Apache-2.0.txt", 100, 100 + len(TRADEMARKS), TRADEMARKS, 30, 1.0),
          Evidence("MIT.txt", "/c/MIT.txt", 5, 5 + len(WARRANTY), WARRANTY, 15, 0.5)]


def test_an_answer_citing_and_quoting_its_block_is_grounded():
    text = 'No: the licence "does not grant permission to use the trade names, trademarks" of the Licensor [1].'
    assert grounding(text, BLOCKS) == ([1], [])


def test_a_citation_of_a_missing_block_is_flagged_and_the_real_one_kept():
    blocks, flags = grounding("No, see [1] and [7].", BLOCKS)
    assert blocks == [1]
    assert flags == ["cites [7], but only blocks [1]-[2] were given"]


def test_an_answer_citing_nothing_is_flagged():
    assert grounding("You may not use the trademarks.", BLOCKS) == ([], ["cites no evidence block"])


def test_a_quote_that_is_not_in_the_cited_block_is_flagged():
    # the phrase exists, but in block 2, not in the cited block 1
    _, flags = grounding('It is provided "without warranty of any kind" [1].', BLOCKS)
    assert flags == ['quotes "without warranty of any kind", which is not in the blocks it cites']
    # a quote of invented text is flagged even where it cites the right block
    _, flags = grounding('The licence "grants every trademark right forever" [1].', BLOCKS)
    assert len(flags) == 1 and "grants every trademark right forever" in flags[0]


def test_quoted_phrases_need_three_words():
    assert quoted('It is "AS IS" and “without warranty of any kind”.') == ["without warranty of any kind"]


def test_a_quote_with_a_changed_character_still_counts():
    # small models drop or change a character; the same fuzzy match as ALR² quotes (partial ratio >= 90)
    assert grounding('"does not grant permision to use the trade names" [1]', BLOCKS) == ([1], [])


def test_grounded_is_in_the_json_and_false_for_not_found():
    answer = Answer(answer=NOT_FOUND, citations=[], selector="hybrid", tokens_in=0, seconds=0.1, dropped=0,
                    found=False)
    assert answer.to_dict()["grounded"] is False
    withheld = Answer(answer="no answer shown: x", citations=[], selector="hybrid", tokens_in=5, seconds=0.1,
                      dropped=0, withheld="x")
    assert not withheld.grounded and withheld.to_dict()["grounded"] is False
    shown = Answer(answer="Belgian law", citations=[], selector="hybrid", tokens_in=5, seconds=0.1, dropped=0)
    assert shown.grounded and shown.to_dict()["answer_span"] is None
