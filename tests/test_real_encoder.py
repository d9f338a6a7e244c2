"""The packaged MiniLM, for real, on small inputs."""

import numpy as np
import pytest

from longrag import Pipeline
from longrag.config import EncoderConfig
from longrag.evaluation.vector_cache import CachedEncoder
from longrag.encoders import load_encoder
from longrag.errors import ConfigError, InputError, ModelNotFoundError
from tests.helpers import CONTRACTS, assert_same_vectors

# Licences in examples/contracts whose text ends the patent licence of a party that sues
# (checked by reading each clause): Apache-2.0 §3, MPL-2.0 §5.2, EPL-2.0 §2(b)/§7, GPL-3.0 and
# AGPL-3.0 §10, CPL-1.0 §7, MS-PL §3(B), OSL-3.0 §10, CDDL-1.0 §6.2, Artistic-2.0 §14.
PATENT_RETALIATION = {
    "Apache-2.0.txt", "MPL-2.0-no-copyleft-exception.txt", "EPL-2.0.txt", "GPL-3.0-only.txt",
    "AGPL-3.0-only.txt", "CPL-1.0.txt", "MS-PL.txt", "OSL-3.0.txt", "CDDL-1.0.txt", "Artistic-2.0.txt",
}


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(EncoderConfig(dtype="float32"))  # exact references: float32


@pytest.mark.slow  # real packaged models
def test_matches_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(encoder.path), device="cpu")
    texts = ["The licensee may terminate this agreement with 30 days notice.", "Cats purr."]
    ours = encoder.encode_ids([encoder.tokenize(t).ids for t in texts])
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert np.allclose((ours * theirs).sum(1), 1.0, atol=1e-5)
    assert ours.shape == (2, 384)


@pytest.mark.slow  # real packaged models
def test_tokens_carry_character_offsets(encoder):
    text = "Governing law: the State of Delaware."
    tokens = encoder.tokenize(text)
    assert [text[a:b].lower() for a, b in tokens.offsets][:2] == ["governing", "law"]


def test_unknown_model_lists_packaged_names():
    with pytest.raises(ModelNotFoundError, match="all-MiniLM-L6-v2"):
        load_encoder(EncoderConfig(dtype="float32", model="org/does-not-exist"))


@pytest.mark.slow  # real packaged models
def test_matryoshka_dim_checked_and_applied():
    with pytest.raises(ConfigError, match="matryoshka_dim=999"):
        load_encoder(EncoderConfig(dtype="float32", matryoshka_dim=999))
    small = load_encoder(EncoderConfig(dtype="float32", matryoshka_dim=128))
    vectors = small.encode_queries(["hello"])
    assert vectors.shape == (1, 128) and np.isclose(np.linalg.norm(vectors), 1.0, atol=1e-5)


@pytest.mark.slow  # real packaged models
def test_query_longer_than_window_is_refused(encoder):
    with pytest.raises(InputError, match="tokens; the encoder reads at most 510"):
        encoder.encode_queries(["word " * 600])


@pytest.mark.slow  # real packaged models
def test_contract_question_finds_a_patent_retaliation_clause(tmp_path, encoder):
    pipe = Pipeline.from_config(None, encoder=encoder)
    pipe.index([CONTRACTS], index_dir=tmp_path / "contracts", progress=False)
    hits = pipe.search("what happens to my patent licence if I sue a contributor", k=5)
    assert hits[0].doc_id in PATENT_RETALIATION
    assert "patent" in hits[0].snippet.lower() or "litigation" in hits[0].snippet.lower()
    assert "litigation" in (CONTRACTS / hits[0].doc_id).read_text()[hits[0].start:hits[0].end].lower()


@pytest.mark.slow  # real packaged models
def test_the_harness_cache_reuses_segment_vectors_of_the_same_encoder_only(encoder):
    ids = [encoder.tokenize(t).ids for t in ("A short clause about patents.", "Another clause on warranties.")]
    plain = encoder.encode_ids(ids)
    vectors: dict = {}
    first = CachedEncoder(load_encoder(EncoderConfig(dtype="float32")), vectors)
    again = CachedEncoder(load_encoder(EncoderConfig(dtype="float32")), vectors)
    cut = CachedEncoder(load_encoder(EncoderConfig(dtype="float32", matryoshka_dim=128)), vectors)
    a = first.encode_ids(ids)
    assert first.cached_seconds == 0.0 and len(vectors) == 2
    b = again.encode_ids(ids)
    assert again.cached_seconds > 0.0  # charged the forward time the first encoder spent
    np.testing.assert_array_equal(a, b)  # equal by construction: b is copied from the cache rows a stored, no computation
    c = cut.encode_ids(ids)
    assert cut.cached_seconds == 0.0 and len(vectors) == 4  # other settings, other vectors
    assert_same_vectors(a, plain)
    assert_same_vectors(c, plain[:, :128] / np.linalg.norm(plain[:, :128], axis=1, keepdims=True))
    assert first.describe() == first.encoder.describe() and first.segment_window == encoder.segment_window


@pytest.mark.slow  # real packaged models
def test_long_texts_are_tokenized_in_slices_with_the_same_tokens(encoder, monkeypatch):
    text = (CONTRACTS / "GPL-3.0-only.txt").read_text() * 2
    whole = encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    monkeypatch.setattr("longrag.encoders.transformer.TOKENIZE_CHARS", 500)  # 140 slices instead of one
    sliced = encoder.tokenize(text)
    assert sliced.ids.tolist() == whole["input_ids"]
    assert sliced.offsets.tolist() == [list(o) for o in whole["offset_mapping"]]  # WordPiece: offsets too
