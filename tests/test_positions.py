"""Position extension (PI/GP/RP), TempScale and RoPE methods, on the packaged MiniLM and a tiny RoPE encoder."""
import copy

import numpy as np
import pytest
import torch

from longrag.config import EncoderConfig
from longrag.encoders import load_encoder
from longrag.encoders.long_model import build_long_model
from longrag.encoders.positions import extend_positions
from longrag.encoders.rope_extension import _selfextend_attention, extend_rope_model, ntk_lambda
from longrag.encoders.temperature import apply_temperature, log_scale
from longrag.errors import ConfigError
from tests.helpers import assert_same_vectors


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(EncoderConfig(dtype="float32"))  # exact references: float32


def _ids(n, seed=0):
    return np.random.default_rng(seed).integers(1000, 20000, n)


def _cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# -- absolute positions ----------------------------------------------------------------------
@pytest.mark.slow  # real packaged models
@pytest.mark.parametrize("method", ["pi", "gp", "rp"])
def test_short_inputs_keep_the_original_embedding(encoder, method):
    long_model = build_long_model(encoder.model, EncoderConfig(dtype="float32", document_method=method, target_length=1024), 512)
    short = [_ids(510), _ids(40, 1)]
    assert _cos(encoder._forward(short, long_model), encoder._forward(short, encoder.model)).min() >= 0.9999
    # a short row batched with a long one still gets its original positions
    mixed = encoder._forward([_ids(700, 2), short[1]], long_model)
    assert _cos(mixed[1], encoder._forward([short[1]], encoder.model)[0]) >= 0.9999


@pytest.mark.slow  # real packaged models
def test_new_rows_follow_each_formula(encoder):
    e_o = encoder.model.embeddings.position_embeddings.weight.detach()
    rows = {m: extend_positions(encoder.model, m, 2048, 512, keep_short=False).embeddings.position_embeddings.weight
            for m in ("pi", "gp", "rp")}
    pi, gp, rp = (rows[m].detach() for m in ("pi", "gp", "rp"))
    assert pi.shape == gp.shape == rp.shape == (2048, 384)
    assert torch.allclose(pi[0], e_o[0]) and torch.allclose(pi[-1], e_o[-1])
    x = 1000 * 511 / 2047  # row 1000 sits between original rows 249 and 250
    assert torch.allclose(pi[1000], (250 - x) * e_o[249] + (x - 249) * e_o[250], atol=1e-6)
    # GP and RP rows are copies of original rows (indexing, no arithmetic): equal bits
    assert torch.equal(gp[1000], e_o[250]) and torch.equal(gp[3], e_o[0])  # ⌊i/4⌋
    assert torch.equal(rp[1000], e_o[1000 - 512])  # i mod 512


@pytest.mark.slow  # real packaged models
@pytest.mark.parametrize("method", ["pi", "gp"])
def test_long_inputs_use_the_extended_rows(encoder, method):
    routed = extend_positions(encoder.model, method, 1024, 512)
    plain = extend_positions(encoder.model, method, 1024, 512, keep_short=False)
    long = [_ids(900, 3)]
    out = encoder._forward(long, routed)
    assert np.isfinite(out).all() and out.shape == (1, 384)
    assert _cos(out, encoder._forward(long, plain)).min() >= 0.9999
    # without the routing, PI/GP change short inputs a lot (PI hurts short documents: the reason short inputs keep the original rows)
    short = [_ids(200, 4)]
    assert _cos(encoder._forward(short, plain), encoder._forward(short, encoder.model)).min() < 0.99
    with pytest.raises(ValueError, match="exceeds the extended length 1024"):
        encoder._forward([_ids(1100)], routed)


@pytest.mark.slow  # real packaged models
def test_original_model_is_left_alone(encoder):
    before = encoder.model.embeddings.position_embeddings.weight.clone()
    build_long_model(encoder.model, EncoderConfig(dtype="float32", document_method="pi", target_length=4096, temperature="log"), 512)
    assert encoder.model.embeddings.position_embeddings.weight.shape == (512, 384)
    assert torch.equal(encoder.model.embeddings.position_embeddings.weight, before)
    assert not encoder.model._forward_pre_hooks and encoder.model.config.max_position_embeddings == 512


@pytest.mark.slow  # real packaged models
def test_encoder_builds_and_uses_the_long_model():
    enc = load_encoder(EncoderConfig(dtype="float32", document_method="pi", target_length=1024))
    assert enc.long_window == 1022 and enc.long_model is not None
    vector = enc.encode_document(_ids(1000))
    assert vector.shape == (384,) and np.isclose(np.linalg.norm(vector), 1, atol=1e-5)


@pytest.mark.slow  # real packaged models
@pytest.mark.parametrize("target, message", [
    (None, "encoder.target_length is required"),
    (256, "encoder.target_length=256 is below the model's own 512"),
    (200_000, "encoder.target_length=200000 exceeds 131072: full attention"),
])
def test_bad_target_lengths_name_the_setting(encoder, target, message):
    with pytest.raises(ConfigError, match=message):
        build_long_model(encoder.model, EncoderConfig(dtype="float32", document_method="pi", target_length=target), 512)


@pytest.mark.slow  # real packaged models
def test_absolute_methods_refuse_other_position_kinds(encoder, rope_model):
    with pytest.raises(ConfigError, match="document_method='gp' needs learned absolute positions.*rotary"):
        extend_positions(rope_model, "gp", 512)
    relative = copy.deepcopy(encoder.model)
    relative.config.position_embedding_type = "relative_key"
    with pytest.raises(ConfigError, match="position_embedding_type='relative_key'"):
        extend_positions(relative, "pi", 1024, 512)


# -- TempScale ---------------------------------------------------------------------------------
@pytest.mark.slow  # real packaged models
def test_temperature_one_is_the_original_model(encoder):
    batch = [_ids(200), _ids(30, 1)]
    same = apply_temperature(copy.deepcopy(encoder.model), 1.0)
    assert_same_vectors(encoder._forward(batch, same), encoder._forward(batch, encoder.model))  # a copy: rounding
    logged = apply_temperature(copy.deepcopy(encoder.model), "log", 512)  # n ≤ L_o: τ(n) = 1
    assert_same_vectors(encoder._forward(batch, logged), encoder._forward(batch, encoder.model))


@pytest.mark.slow  # real packaged models
def test_fixed_temperature_equals_dividing_the_logits(encoder):
    tau, batch = 0.7, [_ids(300)]
    scaled = apply_temperature(copy.deepcopy(encoder.model), tau)
    reference = copy.deepcopy(encoder.model)
    for module in reference.modules():
        if hasattr(module, "scaling") and hasattr(module, "query"):
            module.scaling = module.scaling / tau  # softmax(QKᵀ/(√d·τ)) directly
    out, ref = encoder._forward(batch, scaled), encoder._forward(batch, reference)
    assert _cos(out, ref).min() >= 0.99999
    assert _cos(out, encoder._forward(batch, encoder.model)).min() < 0.9999  # it did change something


@pytest.mark.slow  # real packaged models
def test_log_temperature_is_per_input_length(encoder):
    base = extend_positions(encoder.model, "pi", 1024, 512)
    logged = apply_temperature(copy.deepcopy(base), "log", 512)
    long, short = _ids(798, 5), _ids(100, 6)
    n = 800  # with [CLS] and [SEP]
    fixed = apply_temperature(copy.deepcopy(base), 1 / float(log_scale(n, 512)))
    both = encoder._forward([long, short], logged)
    assert _cos(both[0], encoder._forward([long], fixed)[0]) >= 0.99999
    assert _cos(both[1], encoder._forward([short], encoder.model)[0]) >= 0.9999  # padded row: its own n
    assert _cos(both[0], encoder._forward([long], base)[0]) < 0.9999
    assert float(log_scale(n, 512)) == pytest.approx(np.log(800) / np.log(512))


@pytest.mark.slow  # real packaged models
@pytest.mark.parametrize("tau", ["hot", 0.0, -1.0])
def test_bad_temperature(encoder, tau):
    with pytest.raises(ConfigError, match="encoder.temperature"):
        apply_temperature(copy.deepcopy(encoder.model), tau)


def test_temperature_needs_query_projections():
    from transformers import ModernBertConfig, ModernBertModel

    config = ModernBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                              eos_token_id=2, cls_token_id=1, sep_token_id=2)
    with pytest.raises(ConfigError, match="encoder.temperature=0.5 needs separate query projections"):
        apply_temperature(ModernBertModel(config).eval(), 0.5)


# -- RoPE encoders -----------------------------------------------------------------------------
L_O = 128


@pytest.fixture(scope="module")
def rope_model():
    from transformers import NomicBertConfig, NomicBertModel

    torch.manual_seed(0)
    config = NomicBertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=128, max_position_embeddings=L_O, pad_token_id=0)
    return NomicBertModel(config).eval()


def _run(model, n, pad_from=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (2, n), generator=g)
    mask = torch.ones_like(ids)
    mask[1, pad_from or n:] = 0
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


def test_ntk_factor_one_is_the_original(rope_model):
    assert_same_vectors(_run(extend_rope_model(rope_model, "ntk", L_O), 100), _run(rope_model, 100))


def test_ntk_raises_theta_by_the_ntk_formula(rope_model):
    long_model = extend_rope_model(rope_model, "ntk", 4 * L_O)
    d, theta = 16, rope_model.config.rope_parameters["rope_theta"]
    lam = 4 ** (d / (d - 2))
    assert ntk_lambda(4, d) == pytest.approx(lam)
    expected = 1.0 / (theta * lam) ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    assert torch.allclose(long_model.rotary_emb.inv_freq.double(), expected, rtol=1e-5)
    assert long_model.config.rope_parameters["rope_theta"] == pytest.approx(theta * lam)
    assert rope_model.config.rope_parameters["rope_theta"] == theta  # the original is untouched
    out = _run(long_model, 4 * L_O, pad_from=300)
    assert out.shape == (2, 4 * L_O, 64) and torch.isfinite(out).all()


def test_dynamic_ntk_is_exact_when_short_and_ntk_when_long(rope_model):
    dynamic = extend_rope_model(rope_model, "dynamic", 4 * L_O)
    assert_same_vectors(_run(dynamic, 100), _run(rope_model, 100))
    out = _run(dynamic, 4 * L_O)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, _run(extend_rope_model(rope_model, "ntk", 4 * L_O), 4 * L_O), atol=1e-5)
    assert_same_vectors(_run(dynamic, 100), _run(rope_model, 100))  # back to the original after a long input


def test_selfextend_within_the_window_is_exact(rope_model):
    model = extend_rope_model(rope_model, "selfextend", 4 * L_O, window=64, group=8)
    assert_same_vectors(_run(model, 60, pad_from=20), _run(rope_model, 60, pad_from=20))
    # group 1 maps every distance to itself: the original model at any length it can read
    identity = extend_rope_model(rope_model, "selfextend", L_O, window=16, group=1)
    assert torch.allclose(_run(identity, 120, pad_from=70), _run(rope_model, 120, pad_from=70), atol=1e-5)


def test_selfextend_at_four_times_the_length(rope_model):
    model = extend_rope_model(rope_model, "selfextend", 4 * L_O, window=32, group=8)
    out = _run(model, 4 * L_O, pad_from=333)
    assert out.shape == (2, 4 * L_O, 64) and torch.isfinite(out).all()
    assert rope_model.config._attn_implementation == "sdpa"


def test_selfextend_attention_matches_explicit_positions():
    """Brute force: every (i, j) scored with SelfExtend's relative position, across query blocks."""
    torch.manual_seed(1)
    n, d, w, g, heads = 50, 8, 6, 3, 2
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, d, 2).float() / d))

    def rope(x, pos):
        freqs = pos.float()[..., None] * inv_freq
        emb = torch.cat((freqs, freqs), -1)
        return x * emb.cos() + torch.cat((-x[..., d // 2:], x[..., : d // 2]), -1) * emb.sin()

    q, k, v = (torch.randn(1, heads, n, d) for _ in range(3))
    pos = torch.arange(n)
    module = torch.nn.Module()
    from longrag.encoders.rope_extension import _SelfExtend

    holder = torch.nn.Module()
    holder.inv_freq = inv_freq
    module.longrag_selfextend = _SelfExtend(holder, w, g, block=heads * n * 7)  # 7 queries per block
    out, _ = _selfextend_attention(module, rope(q, pos), rope(k, pos), v, None, scaling=d ** -0.5)
    i, j = pos[:, None], pos[None, :]
    far = i // g - j // g + (w - w // g) * torch.sign(i - j)
    rel = torch.where((i - j).abs() < w, i - j, far)  # query sits `rel` positions after the key
    scores = (rope(q.unsqueeze(3).expand(-1, -1, -1, n, -1), rel) * k.unsqueeze(2)).sum(-1) * d ** -0.5
    expected = torch.softmax(scores, -1) @ v
    assert torch.allclose(out.transpose(1, 2), expected, atol=1e-5)
    assert rel.abs().max() == (n - 1) // g + w - w // g < n - 1  # far distances are compressed


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="selfextend", target_length=4 * L_O, window=32, group=2), "encoder.selfextend_group=2 .* reaches 224"),
    (dict(method="selfextend", target_length=4 * L_O, window=L_O), "encoder.selfextend_window=128"),
    (dict(method="ntk", target_length=64), "encoder.target_length=64"),
    (dict(method="yarn", target_length=512), "encoder.document_method must be one of ntk, dynamic, selfextend"),
])
def test_bad_rope_settings(rope_model, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        extend_rope_model(rope_model, **kwargs)


@pytest.mark.slow  # real packaged models
def test_rope_methods_refuse_absolute_models(encoder):
    with pytest.raises(ConfigError, match="document_method='ntk' needs a model with rotary positions.*'bert'"):
        extend_rope_model(encoder.model, "ntk", 2048)
