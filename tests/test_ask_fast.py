"""The parts of `ask` that need no model: fitting ranked segments to the budget, widening them to
whole sentences, span coverage, rank fusion and the ask settings (with the packaged models:
test_ask.py)."""
import numpy as np
import pytest

from longrag.config import load_config
from longrag.errors import ConfigError
from longrag.ranking import fused_order, reciprocal_rank_fusion
from longrag.reasoning import Candidate, covers, fit_budget, fit_budget_sentences, sentence_bounds


def test_fit_budget_counts_what_it_drops():
    count = len  # one "token" per character keeps the arithmetic visible
    ranked = [(Candidate("d", "d", 0, 6, "aaaaaa"), 3.0), (Candidate("d", "d", 10, 15, "bbbbb"), 2.0),
              (Candidate("d", "d", 20, 22, "cc"), 1.0)]
    chosen = fit_budget(ranked, 8, count)
    assert [e.start for e in chosen] == [0, 20]  # best first, smaller later one still fits, document order
    assert chosen.dropped == 1 and chosen.dropped_tokens == 5


DOC = "First sentence here. The clause that is cut by a border ends here. Last one."


def _segments(text, cuts):
    """Candidates of `text` cut at character offsets (whitespace at a cut belongs to no segment)."""
    out, bounds = [], [0] + cuts + [len(text)]
    for a, b in zip(bounds, bounds[1:]):
        a += len(text[a:b]) - len(text[a:b].lstrip())
        b -= len(text[a:b]) - len(text[a:b].rstrip())
        out.append(Candidate("d", "d", a, b, text[a:b], None, text))
    return out


def test_sentence_bounds_widen_to_the_cut_sentence_only_within_the_cap():
    words = len
    a, b = DOC.index("cut by"), DOC.index("border") + len("border")
    assert DOC[slice(*sentence_bounds(DOC, a, b, 100, words))] == "The clause that is cut by a border ends here."
    assert sentence_bounds(DOC, a, b, 5, words) == (a, b)  # each side costs more than 5 characters: unchanged
    whole = DOC.index("The"), DOC.index("here.", 30) + len("here.")
    assert sentence_bounds(DOC, *whole, 100, words) == whole  # already whole sentences
    # a segment that begins on the full stop of a sentence too long to take in starts after that stop
    stop = DOC.index(". Last")
    assert DOC[slice(*sentence_bounds(DOC, stop, len(DOC), 5, words))] == "Last one."


def test_fit_budget_sentences_merges_widened_neighbours_and_counts_exactly():
    count = len
    segs = _segments(DOC, [DOC.index("cut"), DOC.index("Last")])
    ranked = [(segs[1], 2.0), (segs[0], 1.0), (segs[2], 0.5)]
    chosen = fit_budget_sentences(ranked, 1000, count, extend_tokens=100)
    assert [(e.start, e.end) for e in chosen] == [(0, len(DOC))]  # one block: the document's exact text
    assert chosen[0].text == DOC and chosen.tokens == len(DOC) and chosen.dropped == 0
    # the clause is cut at "cut": widening segment 1 backwards takes its start, not the first sentence
    chosen = fit_budget_sentences(ranked[:1], 1000, count, extend_tokens=100)
    assert chosen[0].text == "The clause that is cut by a border ends here."
    assert covers(chosen.evidence, DOC.index("The clause"), DOC.index("Last") - 1, DOC)
    # too small for the widened segment: the bare segment is kept instead; nothing exceeds the budget
    bare = len(segs[1].text)
    chosen = fit_budget_sentences(ranked, bare + 2, count, extend_tokens=100)
    assert [e.text for e in chosen] == [segs[1].text] and chosen.tokens <= bare + 2 and chosen.dropped == 2
    # without the document text there is nothing to widen into: plain fit_budget
    plain = [(Candidate(c.doc_id, c.path, c.start, c.end, c.text), s) for c, s in ranked]
    assert [e.text for e in fit_budget_sentences(plain, 1000, count, 100)] == [e.text for e in fit_budget(plain, 1000, count)]


def test_covers_joins_neighbours_across_whitespace():
    text = "alpha beta gamma delta"
    assert covers([(0, 5), (6, 10)], 3, 8, text)  # spans "alpha" + "beta" joined over the blank
    assert not covers([(0, 5), (11, 16)], 3, 13, text)  # "beta" missing


def test_bad_ask_settings_are_config_errors():
    with pytest.raises(ConfigError, match="ask.selector must be one of"):
        load_config({"ask": {"selector": "magic"}})
    with pytest.raises(ConfigError, match="generator.extension must be one of"):
        load_config({"generator": {"extension": "rope9"}})


def test_rank_fusion_sums_reciprocal_ranks_and_breaks_ties_by_position():
    assert reciprocal_rank_fusion([["a", "b"], ["b", "c"]]) == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})
    # ranks 1+3, 3+1 and 2+2: the first two tie (1/61 + 1/63 > 2/62), the earlier item goes first
    assert fused_order([np.array([0.9, 0.1, 0.5]), np.array([1.0, 3.0, 2.0])]).tolist() == [0, 1, 2]
