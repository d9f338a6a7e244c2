"""Late chunking with the packaged MiniLM on small documents (no hub)."""

import numpy as np
import pytest
import torch

from longrag.config import EncoderConfig
from longrag.encoders import load_encoder
from longrag.encoders.late_chunking import late_chunk_vectors, overlapping_windows
from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow  # real packaged models


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(EncoderConfig(dtype="float32"))  # exact references: float32


@pytest.fixture(scope="module")
def text_ids(encoder):
    return encoder.tokenize((CONTRACTS / "Apache-2.0.txt").read_text()).ids


def _content_states(encoder, ids, model):
    states, _ = encoder.token_states_batch([ids], model)
    return states[0, len(encoder.head_ids): len(encoder.head_ids) + len(ids)].double().numpy()


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_short_document_spans_carry_context(encoder, text_ids):
    ids = text_ids[:400]
    spans = [(0, 400), (0, 100), (100, 250), (250, 400)]
    late = late_chunk_vectors(encoder, ids, spans)
    assert late.shape == (4, 384) and late.dtype == np.float32
    assert np.allclose(np.linalg.norm(late, axis=1), 1, atol=1e-5)
    # the span over the whole document is the mean of its token vectors (one forward pass) ...
    assert _unit(_content_states(encoder, ids, encoder.model).mean(0)) @ late[0] >= 0.9999
    # ... and close to the mean-pooled document vector, which also pools [CLS] and [SEP]
    assert encoder.encode_ids([ids])[0] @ late[0] >= 0.999
    # segment vectors differ from encoding each segment alone, but describe the same text
    alone = encoder.encode_ids([ids[a:b] for a, b in spans[1:]])
    cos = (alone * late[1:]).sum(1)
    assert cos.max() < 0.99 and cos.min() > 0.5


def _reference(encoder, ids, spans, window, overlap):
    """Brute force: every token's vector from the window where it is furthest from an edge."""
    n = len(ids)
    wins = [w for w, _ in overlapping_windows(n, window, overlap)]
    assert all(b - a == window for a, b in wins) and wins[0][0] == 0 and wins[-1][1] == n
    assert all(wins[k][1] - wins[k + 1][0] >= overlap for k in range(len(wins) - 1))
    states = [_content_states(encoder, ids[a:b], encoder.model) for a, b in wins]
    tokens = np.zeros((n, encoder.full_dim))
    for t in range(n):
        depth = [min(t - a, b - 1 - t) if a <= t < b else -1 for a, b in wins]
        k = int(np.argmax(depth))
        tokens[t] = states[k][t - wins[k][0]]
    return _unit(np.stack([tokens[a:b].mean(0) for a, b in spans]))


@pytest.mark.parametrize("n, window, overlap", [(900, 300, 64), (1000, 510, 64), (520, 510, 100)])
def test_spans_beyond_the_window(encoder, text_ids, n, window, overlap):
    ids = text_ids[:n]
    spans = [(0, n), (0, 7), (250, 420), (window - 10, window + 10), (n - 5, n), (123, 124)]
    late = late_chunk_vectors(encoder, ids, spans, window=window, overlap=overlap)
    assert late.shape == (len(spans), 384) and np.allclose(np.linalg.norm(late, axis=1), 1, atol=1e-5)
    assert ((late * _reference(encoder, ids, spans, window, overlap)).sum(1) >= 0.99999).all()


def test_default_window_is_the_model_window(encoder, text_ids):
    ids = text_ids[:1100]
    late = late_chunk_vectors(encoder, ids, [(0, 550), (550, 1100)])
    assert np.allclose(late, late_chunk_vectors(encoder, ids, [(0, 550), (550, 1100)], window=510), atol=1e-6)


def test_extended_model_reads_the_document_in_one_pass(text_ids):
    pi = load_encoder(EncoderConfig(dtype="float32", document_method="pi", target_length=1024))
    ids = text_ids[:1000]
    late = late_chunk_vectors(pi, ids, [(0, 1000), (10, 20)])
    states = _content_states(pi, ids, pi.long_model)
    assert _unit(states.mean(0)) @ late[0] >= 0.9999 and _unit(states[10:20].mean(0)) @ late[1] >= 0.9999
    assert _unit(_content_states(pi, ids[:510], pi.model).mean(0)) @ late[0] < 0.9999  # not windowed


def test_matryoshka_truncates_then_normalises(text_ids):
    small = load_encoder(EncoderConfig(dtype="float32", matryoshka_dim=64))
    spans = [(0, 50), (40, 200)]
    full = late_chunk_vectors(small, text_ids[:200], spans, window=None)
    assert full.shape == (2, 64) and np.allclose(np.linalg.norm(full, axis=1), 1, atol=1e-5)
    reference = np.stack([_content_states(small, text_ids[:200], small.model)[a:b].mean(0)[:64] for a, b in spans])
    assert ((full * _unit(reference)).sum(1) >= 0.9999).all()


@pytest.mark.parametrize("spans, kwargs, message", [
    ([(5, 5)], {}, "non-empty"),
    ([(0, 301)], {}, "within the document's 300 tokens"),
    ([(-1, 4)], {}, "non-empty"),
    ([(0, 10)], {"window": 600}, "exceeds the model's 510 content tokens"),
    ([(0, 10)], {"window": 100, "overlap": 50}, "more than twice the overlap"),
])
def test_bad_inputs(encoder, text_ids, spans, kwargs, message):
    with pytest.raises(ValueError, match=message):
        late_chunk_vectors(encoder, text_ids[:300], spans, **kwargs)


def test_no_spans_gives_an_empty_matrix(encoder, text_ids):
    assert late_chunk_vectors(encoder, text_ids[:50], []).shape == (0, 384)


def test_a_32k_token_document_is_read_window_by_window(encoder, monkeypatch):
    """Context-free stand-in states (a fixed vector per token id): every forward pass stays within one
    window, and span means are exact at 32k tokens. (Peak RSS with the real model: see the report.)"""
    table = torch.randn(30000, encoder.full_dim, generator=torch.Generator().manual_seed(0))
    widths = []

    def fake_states(batch, model=None):
        seq = [encoder.head_ids + [int(t) for t in x] + encoder.tail_ids for x in batch]
        widths.append(len(seq[0]))
        return table[torch.tensor(seq)], None

    monkeypatch.setattr(encoder, "token_states_batch", fake_states)
    ids = np.random.default_rng(0).integers(1000, 20000, 32768)
    spans = [(a, a + 300) for a in range(0, 32700, 300)] + [(0, 32768), (32767, 32768)]
    late = late_chunk_vectors(encoder, ids, spans, overlap=64)
    expected = _unit(np.stack([table[ids[a:b]].double().mean(0).numpy() for a, b in spans]))
    assert late.shape == (len(spans), 384) and ((late * expected).sum(1) >= 0.99999).all()
    assert max(widths) == 512 and len(widths) == int(np.ceil((32768 - 64) / (510 - 64)))
