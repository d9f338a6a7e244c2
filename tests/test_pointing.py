"""Reading by pointing: an answer's new words aligned to one sentence of the documents (pure; no model)."""
from longrag.reasoning.pointing import align, new_words, point, reading_blocks, says_not_found, sentences_of
from longrag.reasoning.answer import DECLINED, NOT_FOUND
from longrag.reasoning.verdict import UNANSWERED
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
    """A backend like a server that gives no log-probabilities and allows no constraint: it replies
    with set text (what it is sent is not under test here)."""

    capabilities = frozenset()

    def __init__(self, reply: str):
        self.reply = reply

    def special_tokens(self):
        return []

    def chat(self, messages, max_new_tokens=256, stream=None):
        return self.reply(messages) if callable(self.reply) else self.reply

    def count_tokens(self, text):
        return len(text.split())

    def count_chat(self, messages):
        return sum(len(m["content"].split()) for m in messages)


def test_a_reply_that_declines_points_at_nothing_even_when_its_words_occur():
    blocks = [Evidence("EUPL-1.2.txt", "EUPL-1.2.txt", 0, len(EUPL), EUPL + " Nothing else is stated here.", 0, 0.0)]
    assert says_not_found("not stated.") and not says_not_found("Belgian law")
    declined = point(Replies("not stated."), "What is the fee?", blocks)
    assert declined.span is None and declined.aligned == 0.0
    pointed = point(Replies("Belgian law"), "Which law governs the licence?", blocks)
    assert pointed.span.text == "Belgian law" and pointed.aligned == 1.0


def _read(generator_reply, checker_reply, question: str):
    from longrag.config import AskConfig
    from longrag.reasoning.answer import read_answer

    evidence = [Evidence("EUPL-1.2.txt", "EUPL-1.2.txt", 0, len(EUPL), EUPL, 60, 1.0)]
    start = EUPL.index("This licence shall be governed by Belgian")
    quotes = [Citation("EUPL-1.2.txt", "EUPL-1.2.txt", start, len(EUPL), EUPL[start:], 1)]
    return read_answer(Replies(generator_reply), Replies(checker_reply), question, evidence, quotes,
                       {"EUPL-1.2.txt": EUPL}, AskConfig())


def test_without_log_probabilities_a_fact_answer_is_still_a_checked_span():
    question = "Which law governs the licence if the licensor has no seat in the EU?"
    shown = _read("Belgian law", "Yes", question)
    assert shown.text == "Belgian law" == EUPL[shown.span.start:shown.span.end]
    assert shown.verdict.withheld is None and shown.verdict.method == "span check"
    assert shown.cited and shown.cited[0].block == 1 and shown.span.block == 1
    # the checker (asked for a plain Yes or No) does not take the span to answer: withheld, reason given
    def answers_but_does_not_support(messages):
        return "No" if "proposed answer" in messages[-1]["content"].lower() else "Yes"

    refused = _read("Belgian law", answers_but_does_not_support, question)
    assert refused.verdict.withheld and refused.span is not None and refused.verdict.answerable > 0
    # the checker says the quotes do not answer: not found before anything is generated
    gated = _read("Belgian law", "No", question)
    assert gated.text == NOT_FOUND and gated.not_found == UNANSWERED and gated.span is None
    # an invention aligns to nothing: withheld whatever the checker says, with that reason
    invented = _read("A licence for 10 years.", "Yes", question)
    assert invented.span is None and "not in the documents' words" in invented.verdict.withheld


def test_a_declining_reading_is_not_found_with_its_reason():
    declined = _read("not stated.", "Yes", "What is the annual fee under the licence?")
    assert declined.text == NOT_FOUND and declined.not_found == DECLINED and declined.span is None


def test_a_number_written_out_aligns_with_its_figures():
    text = "The object code may use macros and inline functions (ten lines or less in length) freely."
    span, share, _ = align("10 lines or less in length", "How long can macros and inline functions be?",
                           spans("LGPL.txt", text))
    assert share == 1.0 and span.text == "ten lines or less in length"


def test_a_one_letter_span_points_at_nothing():
    text = "The terms (A) reproduce, (B) derivative works and (C) distribution have the meaning given by law."
    assert align("(C)", "In which licence do the terms have the meaning given by law?", spans("x.txt", text))[0] is None


def test_a_clause_number_is_a_label_not_an_answer():
    text = ("9.5 Either party may terminate this Agreement on fifteen (15) days' prior written notice. "
            "(b) The Reseller shall keep records.")
    question = "How much notice must a party give to terminate?"
    assert align("9.5", question, spans("u.txt", text))[0] is None
    assert align("b", "Which clause covers records?", spans("u.txt", text))[0] is None
    span, share, _ = align("fifteen (15) days", question, spans("u.txt", text))
    assert share == 1.0 and span.text == "fifteen (15) days"
    # a figure inside the sentence, or a dotted number that is not its first word, is still an answer
    rate = "Royalties are paid quarterly. The royalty rate is 9.5 per cent of net sales."
    assert align("9.5", "What is the royalty rate?", spans("r.txt", rate))[0].text == "9.5"


def test_a_question_for_an_amount_needs_a_number_in_its_answer():
    from longrag.reasoning.pointing import asks_number, holds_number

    assert asks_number("How long do I have to cure a breach?") and asks_number("Under the EPL, how much is the fee?")
    assert asks_number("In what year was it signed?") and not asks_number("Which law governs the licence?")
    assert not asks_number("When does the licence end?")  # answered by an event as often as by a date
    assert holds_number("sixty days") and holds_number("$1,000,000") and holds_number("by 1 March")
    assert holds_number("in December") and not holds_number("a reasonable time")
    assert not holds_number("you may decide on the market")  # "may", "dec…", "mar…" are not months here
    cap = ("Except for breaches of confidentiality, the maximum damages exposure of each party shall be limited "
           "to a reasonable amount. Either party may terminate on notice.")
    evidence = [Evidence("cap.txt", "cap.txt", 0, len(cap), cap, 30, 1.0)]
    quotes = [Citation("cap.txt", "cap.txt", 0, cap.index(" Either"), cap[:cap.index(" Either")], 1)]
    from longrag.config import AskConfig
    from longrag.reasoning.answer import read_answer

    reading = read_answer(Replies("a reasonable amount"), Replies("Yes"), "How much is the maximum damages exposure?",
                          evidence, quotes, {"cap.txt": cap}, AskConfig())
    assert reading.span.text == "a reasonable amount" and "asks for an amount" in reading.verdict.withheld
