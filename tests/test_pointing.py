"""Reading by pointing: an answer's new words aligned to one sentence of the documents (pure; no model)."""
from longrag.reasoning.pointing import align, new_words, point, reading_blocks, says_not_found, sentences_of
from longrag.types import Citation, Evidence, Span

EUPL = ("Without prejudice to specific agreement between parties, this Licence shall be governed by the law of the "
        "European Union Member State where the Licensor has his seat. This licence shall be governed by Belgian law "
        "if the Licensor has no seat, residence or registered office inside a European Union Member State.")
CAP = ("Except for breaches of confidentiality, the maximum damages exposure of each party under this Agreement "
       "shall not exceed $1,000,000 in the aggregate. Either party may terminate on ninety days' notice.")


def spans(doc_id: str, text: str) -> list[Span]:
    return sentences_of([Evidence(doc_id, doc_id, 0, len(text), text, 0, 0.0)])


def test_a_restated_answer_is_grounded_by_what_it_adds():
    question = "What is the maximum damages exposure of each party under the agreement?"
    reading = "The maximum damages exposure of each party under the agreement is $1,000,000."
    span, share, added = align(reading, question, spans("cap.txt", CAP))
    assert added == 1 and share == 1.0
    assert span.text == "$1,000,000"[1:] or span.text.endswith("1,000,000")
    assert CAP[span.start:span.end] == span.text


def test_the_span_keeps_the_question_word_beside_the_answer():
    question = "Which law governs the licence if the licensor has no seat in any EU member state?"
    span, share, _ = align("Belgian law", question, spans("EUPL-1.2.txt", EUPL))
    assert share == 1.0 and span.text == "Belgian law"
    assert EUPL[span.start:span.end] == "Belgian law"


def test_an_invention_aligns_to_nothing():
    question = "How long does the licence last?"
    span, share, added = align("A licence for 10 years.", question, spans("EUPL-1.2.txt", EUPL))
    assert added >= 2 and share < 0.75  # "10", "years" are in no sentence


def test_an_answer_that_only_restates_the_question_adds_nothing():
    question = "Which law governs the licence?"
    assert new_words("The law governs the licence.", question) == []
    assert align("The law governs the licence.", question, spans("EUPL-1.2.txt", EUPL)) == (None, 0.0, 0)


def test_an_answer_drawn_from_two_documents_is_never_one_span():
    question = "What happens?"
    reading = "Belgian law and $1,000,000 aggregate exposure"
    sentences = spans("EUPL-1.2.txt", EUPL) + spans("cap.txt", CAP)
    span, share, _ = align(reading, question, sentences)
    assert share < 1.0  # half of it is in each document
    assert span.doc_id in {"EUPL-1.2.txt", "cap.txt"}
    text = EUPL if span.doc_id == "EUPL-1.2.txt" else CAP
    assert text[span.start:span.end] == span.text


def test_a_5000_character_line_is_aligned_inside_one_piece():
    line = " ".join(f"cell{i}" for i in range(900)) + " the fee is seventeen dollars " + " ".join(f"x{i}" for i in range(50))
    assert len(line) > 5000 and "\n" not in line
    span, share, _ = align("seventeen dollars", "What is the fee?", spans("table.txt", line))
    assert share == 1.0 and line[span.start:span.end] == "seventeen dollars"


def test_reading_blocks_widen_each_quote_by_its_neighbouring_sentences():
    text = "First sentence here. The second sentence holds the answer. A third one follows. And a fourth sentence closes it."
    a = text.index("The second")
    quote = Citation("d.txt", "d.txt", a, a + len("The second sentence holds the answer."), "", 1)
    blocks = reading_blocks([quote], {"d.txt": text}, lambda t: len(t.split()))
    assert len(blocks) == 1
    assert blocks[0].text == "First sentence here. The second sentence holds the answer. A third one follows."
    assert text[blocks[0].start:blocks[0].end] == blocks[0].text


class Replies:
    """A generator that replies with set text (what `point` sends it is not under test here)."""

    def __init__(self, reply: str):
        self.reply = reply

    def special_tokens(self):
        return []

    def chat(self, messages, max_new_tokens=256, stream=None):
        return self.reply


def test_a_reply_that_declines_points_at_nothing_even_when_its_words_occur():
    blocks = [Evidence("EUPL-1.2.txt", "EUPL-1.2.txt", 0, len(EUPL), EUPL + " Nothing else is stated here.", 0, 0.0)]
    assert says_not_found("not stated.") and not says_not_found("Belgian law")
    declined = point(Replies("not stated."), "What is the fee?", blocks)
    assert declined.span is None and declined.aligned == 0.0
    pointed = point(Replies("Belgian law"), "Which law governs the licence?", blocks)
    assert pointed.span.text == "Belgian law" and pointed.aligned == 1.0
