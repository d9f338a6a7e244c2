"""Copy-constrained reading: on both local backends the reply is a span of one block, at exact
offsets of its document; a backend without logit control says so, and the retry keeps the free
reading there."""
import numpy as np
import pytest

from longrag.config import load_config, with_overrides
from longrag.generation import load_generator
from longrag.generation.openai_server import OpenAIGenerator
from longrag.reasoning.constrained import (ConstraintUnsupported, Vocabulary, _Blocks, _Copier, constrained_point,
                                           copies, point_or_copy)
from longrag.reasoning.pointing import point
from longrag.types import Evidence

EUPL = ("Without prejudice to specific agreement between parties, this Licence shall be governed by the law of the "
        "European Union Member State where the Licensor has his seat. This licence shall be governed by Belgian law "
        "if the Licensor has no seat, residence or registered office inside a European Union Member State.")
CAP = ("Except for breaches of confidentiality, the maximum damages exposure of each party under this Agreement "
       "shall not exceed $1,000,000 in the aggregate. Either party may terminate on ninety days’ notice.")
# the blocks lie inside longer documents, so a span's offsets are the document's, not the block's
DOCUMENTS = {"EUPL-1.2.txt": "14. Applicable law\n" + EUPL + "\n15. Languages", "cap.txt": "7. Liability. " + CAP}
BLOCKS = [Evidence("EUPL-1.2.txt", "EUPL-1.2.txt", 19, 19 + len(EUPL), EUPL, 60, 1.0),
          Evidence("cap.txt", "cap.txt", 14, 14 + len(CAP), CAP, 40, 0.5)]
QUESTIONS = ["Which law governs the licence if the licensor has no seat in the EU?",
             "What is the maximum damages exposure of each party?",
             "How much notice does a party give to terminate?"]


def test_the_blocks_sit_in_their_documents():
    for block in BLOCKS:
        assert DOCUMENTS[block.doc_id][block.start:block.end] == block.text


def test_the_copier_takes_the_best_token_that_continues_the_block_never_a_preferred_invention():
    text = "governed by Belgian law if"
    pieces = {b"Bel": [0], b"gian": [1], b" law": [2], b" French": [3], b" if": [4], b"Belgian": [5], b"\n": [6]}
    vocab = Vocabulary(pieces, 7, ends=[6, 7], stop=7)
    blocks = _Blocks([Evidence("d", "d", 100, 100 + len(text), text, 5, 1.0)])
    at = text.index("Belgian")
    copier = _Copier(blocks, vocab, 0, -0.1, [(0, at, at + 3)])  # "Bel" copied so far
    logits = np.full(8, -10.0)
    logits[[5, 3, 1]] = [5.0, 4.0, 1.0]  # the model prefers tokens that do not continue "Bel" here
    assert copier.choose(logits) == 1  # "gian": the only continuation
    logits[[3, 2, 7]] = [6.0, 2.0, 0.0]  # " French" is the model's choice; " law" the best copy
    assert copier.choose(logits) == 2
    logits[[7, 4]] = [3.0, 1.0]  # ending is likelier than " if"
    assert copier.choose(logits) == 7 and copier.done
    assert copier.tokens == [0, 1, 2] and len(copier.logprobs) == 4  # the end's log-probability is counted
    span = blocks.citation(*copier.copy())
    assert (span.start, span.end, span.text) == (100 + at, 100 + at + len("Belgian law"), "Belgian law")


def test_a_backend_without_logit_control_is_refused_before_any_request():
    server = OpenAIGenerator("http://127.0.0.1:9/v1", "fake", context_window=4096, max_retries=0)
    with pytest.raises(ConstraintUnsupported, match="the openai backend does not give.*free reading and its alignment"):
        constrained_point(server, QUESTIONS[0], BLOCKS)


def _local(backend: str):
    model = {"llama.cpp": "qwen2.5-0.5b", "transformers": "SmolLM2-135M-Instruct"}[backend]
    threads = {"threads": 2} if backend == "llama.cpp" else {}
    return load_generator(with_overrides(load_config(None), generator={"model": model, "backend": backend,
                                                                       **threads}).generator)


@pytest.fixture(scope="module", params=["llama.cpp", "transformers"])
def local(request):
    return _local(request.param)


@pytest.mark.slow  # real packaged models
def test_every_copy_is_a_span_of_one_block_at_its_documents_offsets(local):
    for question in QUESTIONS[:2]:
        found = list(copies(local, question, BLOCKS, starts=3, max_new_tokens=24))
        assert len(found) == 3  # every start of the beam is read
        starts = set()
        for copied in found:
            span = copied.span
            assert span is not None and copied.text == span.text and copied.tokens <= 24
            assert DOCUMENTS[span.doc_id][span.start:span.end] == span.text
            assert any(b.doc_id == span.doc_id and b.start <= span.start < span.end <= b.end for b in BLOCKS)
            starts.add((span.doc_id, span.start))
        assert len(starts) > 1  # the beam starts its copies at different places


@pytest.mark.slow  # real packaged models
def test_a_copy_that_adds_to_the_question_is_a_grounded_pointed_answer(local):
    pointed = constrained_point(local, QUESTIONS[1], BLOCKS, starts=2)
    assert pointed.span is not None and pointed.reading == pointed.span.text
    assert (pointed.aligned == 1.0) == (pointed.new_words > 0)


class _Says:
    """A generator whose free replies are fixed; everything else (the model, its logits) is `generator`'s."""

    def __init__(self, generator, reply: str):
        self._generator, self._reply = generator, reply

    def __getattr__(self, name):
        return getattr(self._generator, name)

    def chat(self, messages, max_new_tokens=256, stream=None):
        return self._reply


INVENTION = "A licence for 10 years under Ruritanian statutes."  # its new words align to nothing


def test_without_logit_control_the_retry_keeps_the_free_reading():
    server = _Says(OpenAIGenerator("http://127.0.0.1:9/v1", "fake", context_window=4096, max_retries=0), INVENTION)
    assert point_or_copy(server, QUESTIONS[0], BLOCKS) == point(server, QUESTIONS[0], BLOCKS)
    assert point(server, QUESTIONS[0], BLOCKS).span is None


@pytest.mark.slow  # real packaged models
def test_the_copy_is_read_only_when_the_free_reading_does_not_align(local):
    aligned = _Says(local, "the law is Belgian")  # aligned, and not a span of a block
    assert point(aligned, QUESTIONS[0], BLOCKS).aligned == 1.0
    assert point_or_copy(aligned, QUESTIONS[0], BLOCKS, starts=1).reading == "the law is Belgian"
    inventor = _Says(local, INVENTION)
    assert point(inventor, QUESTIONS[0], BLOCKS).aligned < 0.75
    retried = point_or_copy(inventor, QUESTIONS[0], BLOCKS, starts=1)
    assert retried.span is not None and retried.reading == retried.span.text
    assert DOCUMENTS[retried.span.doc_id][retried.span.start:retried.span.end] == retried.reading
