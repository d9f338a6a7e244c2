"""The generator: packaged SmolLM2 for real on small inputs, SelfExtend against a brute-force reference.

The dequantised SmolLM2 copy lives in the longrag cache ($LONGRAG_CACHE or the user cache dir);
the first run writes it (~20 s), later runs load it in under a second. No hub access.
"""

import pytest
import torch

from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

from longrag.errors import ConfigError, InputError, ModelNotFoundError
from longrag.generation import ContextExtension, Generator, effective_window
from longrag.generation import context_extension as rope
from longrag.generation.base import REPEAT_TOKENS, TextPieces
from longrag.generation.generator import _Streamer, _StopOnLoop
from longrag.generation.weights import file_sha256
from longrag.generation.context_extension import enable_selfextend, scale_rope


@pytest.fixture(scope="module")
def smol():
    return Generator.from_settings("SmolLM2-135M-Instruct")


def _logits(generator: Generator, text: str) -> torch.Tensor:
    ids = torch.tensor([generator.tokenizer(text, add_special_tokens=False).input_ids])
    with torch.inference_mode():
        return generator.model(ids).logits[0]


PROSE = ("The harbour was quiet in the early morning. Fishing boats rocked against the pier while gulls "
         "circled above the market, where traders were setting out baskets of bread, cheese and apples. ")


# ---- the packaged model, for real -------------------------------------------------------------

@pytest.mark.slow  # real packaged models
def test_answers_a_simple_question(smol):
    prompt = smol.chat_prompt("You are a helpful assistant.", "What is the capital of France?")
    assert "Paris" in smol.generate(prompt, max_new_tokens=20)


@pytest.mark.slow  # real packaged models
def test_streamed_pieces_join_to_the_answer(smol):
    pieces = []
    prompt = smol.chat_prompt("You are a helpful assistant.", "Name three colours.")
    answer = smol.generate(prompt, max_new_tokens=16, stream=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == answer


@pytest.mark.slow  # real packaged models
def test_prompt_over_the_window_is_refused_not_truncated(smol):
    prompt = "word " * smol.window
    with pytest.raises(InputError, match=r"prompt has \d+ tokens; the generator's window is 8192 \(method none"):
        smol.generate(prompt, max_new_tokens=8)
    fits = "word " * 100
    n = smol.count_tokens(fits)
    with pytest.raises(InputError, match="window"):  # the answer's tokens count against the window too
        smol.generate(fits, max_new_tokens=smol.window - n + 1)


@pytest.mark.slow  # real packaged models
def test_linear_factor_one_is_the_plain_model(smol):
    linear = Generator.from_settings("smollm2-135m", ContextExtension("linear", factor=1.0))
    assert linear.model.config.rope_parameters["rope_type"] == "linear"
    assert torch.allclose(_logits(linear, PROSE), _logits(smol, PROSE), atol=1e-4)


@pytest.mark.slow  # real packaged models
def test_selfextend_inside_the_window_is_exact(smol):
    """Shorter than W, every distance is a neighbour distance: same logits as no extension."""
    text = PROSE * 3  # ~120 tokens
    plain = _logits(smol, text)
    patched = Generator.from_settings("SmolLM2-135M-Instruct", ContextExtension("selfextend", window=512, group=8))
    assert torch.allclose(_logits(patched, text), plain, atol=1e-4)
    # group 1 maps grouped positions onto the true ones, so the merge of both maps is exact too
    enable_selfextend(patched.model, ContextExtension("selfextend", window=16, group=1))  # re-patch, same weights
    assert torch.allclose(_logits(patched, text), plain, atol=1e-4)
    # and with grouping the far tokens really move
    enable_selfextend(patched.model, ContextExtension("selfextend", window=16, group=4))
    assert not torch.allclose(_logits(patched, text), plain, atol=1e-2)


@pytest.mark.slow  # real packaged models
def test_score_prefers_the_context_that_holds_the_answer(smol):
    """A 135M model copies well: a question whose words appear in the context gets clearly higher
    likelihood (margins measured here: 0.65-2.6 nats/token), so a plain `>` is a stable assertion."""
    facts = [
        ("Marie Curie won two Nobel Prizes for her research on radioactivity.",
         "Who won two Nobel Prizes for research on radioactivity?"),
        ("The Amazon river flows through Brazil, Peru and Colombia into the Atlantic Ocean.",
         "Which ocean does the Amazon river flow into?"),
        ("Mount Kilimanjaro, the highest mountain in Africa, stands in Tanzania.",
         "In which country is Mount Kilimanjaro?"),
    ]
    pairs = [(f"{context} {PROSE}\nQuestion:", f" {q}") for context, q in facts]
    pairs += [(f"{PROSE}{PROSE}\nQuestion:", f" {q}") for _, q in facts]
    scores = smol.score(pairs, batch_size=4)
    for relevant, irrelevant in zip(scores[:3], scores[3:]):
        assert relevant.log_likelihood > irrelevant.log_likelihood
        assert relevant.neg_entropy <= 0 and relevant.tokens > 5


@pytest.mark.slow  # real packaged models
def test_batched_scores_equal_one_by_one(smol):
    pairs = [("Short context.", " A question?"), (PROSE * 2, " Where were the boats?")]
    batched = smol.score(pairs, batch_size=2)
    single = [smol.score([pair])[0] for pair in pairs]
    for a, b in zip(batched, single):
        assert a.tokens == b.tokens
        assert abs(a.log_likelihood - b.log_likelihood) < 1e-4 and abs(a.neg_entropy - b.neg_entropy) < 1e-4


def test_unknown_model_lists_packaged_names():
    with pytest.raises(ModelNotFoundError, match="SmolLM2-135M-Instruct"):
        Generator.from_settings("org/does-not-exist")


# ---- formulas and config ----------------------------------------------------------------------

def test_effective_window_formulas():
    assert effective_window(8192, ContextExtension()) == 8192
    for method in ("linear", "dynamic", "yarn"):
        assert effective_window(8192, ContextExtension(method, factor=4)) == 32768
    assert effective_window(8192, ContextExtension("selfextend", window=512, group=8)) == (8192 - 512) * 8 + 512
    with pytest.raises(ConfigError):
        effective_window(512, ContextExtension("selfextend", window=512))
    with pytest.raises(ConfigError, match="method must be one of"):
        ContextExtension("ntk")
    with pytest.raises(ConfigError, match="factor"):
        ContextExtension("linear", factor=0.5)


def test_rope_parameters_written_for_transformers():
    config = LlamaConfig(max_position_embeddings=8192)
    scale_rope(config, ContextExtension("yarn", factor=4))
    assert config.rope_parameters["rope_type"] == "yarn" and config.rope_parameters["factor"] == 4.0
    assert config.rope_parameters["original_max_position_embeddings"] == 8192
    assert config.max_position_embeddings == 8192  # dynamic NTK and YaRN read it as the trained length
    with pytest.raises(ConfigError, match="plain RoPE"):
        scale_rope(config, ContextExtension("linear", factor=2))


def test_gguf_hash_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGRAG_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"abc")
    first = file_sha256(weights)
    assert first.startswith("ba7816bf") and (tmp_path / "cache" / "generators" / "hashes.json").exists()
    weights.write_bytes(b"abcd")  # size changes: hashed again
    assert file_sha256(weights) != first


# ---- SelfExtend on a tiny random Llama --------------------------------------------------------

def _tiny_llama(**kwargs) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         initializer_range=0.3, **kwargs)
    return LlamaForCausalLM(config).eval()


def _reference_attention(layer, rotary, hidden, window, group):
    """Pair by pair: RoPE scores depend only on the relative position, so rotate the query by
    the SelfExtend distance and leave the key unrotated."""
    batch, length, _ = hidden.shape
    shape = (batch, length, -1, layer.head_dim)
    q = layer.q_proj(hidden).view(shape).transpose(1, 2)
    k = repeat_kv(layer.k_proj(hidden).view(shape).transpose(1, 2), layer.num_key_value_groups)
    v = repeat_kv(layer.v_proj(hidden).view(shape).transpose(1, 2), layer.num_key_value_groups)
    rows = []
    for i in range(length):
        j = torch.arange(i + 1)
        rel = torch.where(i - j < window, i - j, (i // group + window - window // group) - j // group)
        cos, sin = rotary(q, rel[None])
        qi = q[:, :, i:i + 1] * cos[:, None] + rotate_half(q[:, :, i:i + 1]) * sin[:, None]
        probs = torch.softmax((qi * k[:, :, :i + 1]).sum(-1) * layer.scaling, dim=-1)
        rows.append((probs[..., None] * v[:, :, :i + 1]).sum(-2))
    return layer.o_proj(torch.stack(rows, 2).transpose(1, 2).reshape(batch, length, -1))


@pytest.mark.parametrize("block_rows", [512, 7])  # one block, and blocks that split the window
def test_selfextend_attention_matches_brute_force(block_rows, monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", block_rows)
    model = _tiny_llama()
    layer, rotary = model.model.layers[0].self_attn, model.model.rotary_emb
    enable_selfextend(model, ContextExtension("selfextend", window=4, group=3))
    hidden = torch.randn(1, 30, 32)
    with torch.no_grad():
        ours, _ = layer(hidden_states=hidden, position_ids=torch.arange(30)[None])
        reference = _reference_attention(layer, rotary, hidden, window=4, group=3)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_selfextend_decoding_with_cache_matches_full_recompute(monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", 5)
    model = _tiny_llama()
    enable_selfextend(model, ContextExtension("selfextend", window=4, group=3))
    ids = torch.randint(0, 64, (1, 24))
    with torch.no_grad():
        full = model(ids).logits[0, -4:]
        out = model(ids[:, :20], use_cache=True)
        steps = []
        for t in range(20, 24):
            out = model(ids[:, t:t + 1], past_key_values=out.past_key_values, use_cache=True)
            steps.append(out.logits[0, -1])
        plain = _tiny_llama()(ids).logits[0, -4:]
    assert torch.allclose(torch.stack(steps), full, atol=1e-4)
    assert not torch.allclose(full, plain, atol=1e-3)  # the grouping did change something


@pytest.mark.parametrize("attention", ["sdpa", "eager"])  # boolean and additive masks
def test_selfextend_left_padding_matches_unpadded(attention, monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", 5)
    model = _tiny_llama(attn_implementation=attention)
    enable_selfextend(model, ContextExtension("selfextend", window=4, group=3))
    short, long = torch.randint(0, 64, (1, 12)), torch.randint(0, 64, (1, 20))
    ids = torch.cat([torch.cat([torch.zeros(1, 8, dtype=torch.long), short], 1), long])
    mask = torch.ones_like(ids)
    mask[0, :8] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask, position_ids=positions).logits
        alone = model(short).logits
    assert torch.allclose(batched[0, 8:], alone[0], atol=1e-4)


def test_selfextend_needs_llama_attention():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ConfigError, match="Llama"):
        enable_selfextend(model, ContextExtension("selfextend"))


def test_a_looping_answer_stops_and_is_said_once():
    n = REPEAT_TOKENS
    prompt = [7] * 5
    loop = _StopOnLoop(len(prompt), n)
    fresh = torch.tensor([prompt + list(range(100, 100 + 3 * n))])
    assert not loop(fresh, None).item() and not loop.looped  # no run of n tokens repeats
    sentence = list(range(200, 200 + n + 3))
    looping = torch.tensor([prompt + sentence + sentence[:n]])
    assert loop(looping, None).item() and loop.looped
    # what generate() keeps: the sentence once (the repeated run of n tokens is cut)
    answer = looping[0, len(prompt):].tolist()
    assert answer[: len(answer) - n] == sentence


@pytest.mark.slow  # real packaged models
def test_streamed_pieces_join_to_the_cut_answer(smol):
    pieces = []
    text = TextPieces(smol._decode, pieces.append, hold=4)
    streamer = _Streamer(text)
    ids = smol.tokenizer("The answer is no. The answer is no. The answer", add_special_tokens=False).input_ids
    streamer.put(torch.tensor([1, 2, 3]))  # the prompt comes first and is not shown
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    kept = ids[: len(ids) - 4]
    text.finish(kept)
    assert "".join(pieces) == smol.tokenizer.decode(kept, skip_special_tokens=True)
