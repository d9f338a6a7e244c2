"""SelfExtend is one attention forward for every RoPE family: Llama, Qwen2 (q/k/v biases) and Qwen3
(per-head q/k norms) against a pair-by-pair reference on tiny random models, OLMo2, Cohere and
StableLM (flat norms, interleaved and partial rotation) where it must be exact, then the packaged
qwen2.5-0.5b (Qwen2) and SmolLM2 (Llama) for real (slow).

The packaged models' transformers copies are dequantised into the session's longrag cache on
first use (qwen2.5-0.5b ~60 s, in its fixture); each slow test then takes under 40 s on 2 busy cores.
"""

import pytest
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)
from transformers.models.llama.modeling_llama import repeat_kv, rotate_half

from longrag.errors import ConfigError
from longrag.generation import ContextExtension, TransformersGenerator
from longrag.generation import context_extension as rope
from longrag.generation.context_extension import enable_selfextend

FAMILIES = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
            "qwen3": (Qwen3Config, Qwen3ForCausalLM)}


def _tiny(family: str, **kwargs):
    config_class, model_class = FAMILIES[family]
    torch.manual_seed(0)
    config = config_class(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                          initializer_range=0.3, **kwargs)
    model = model_class(config).eval()
    with torch.no_grad():  # random biases (Qwen2) and norm weights (Qwen3), so that skipping one would show
        for name, param in model.named_parameters():
            if name.endswith(("_proj.bias", "q_norm.weight", "k_norm.weight")):
                param.copy_(torch.randn_like(param) * 0.5 + name.endswith("weight"))
    return model


def _reference_attention(layer, rotary, hidden, window, group):
    """Pair by pair: RoPE scores depend only on the relative position, so rotate the query by the
    SelfExtend distance and leave the key unrotated."""
    batch, length, _ = hidden.shape
    shape = (batch, length, -1, layer.head_dim)
    q_norm, k_norm = getattr(layer, "q_norm", torch.nn.Identity()), getattr(layer, "k_norm", torch.nn.Identity())
    q = q_norm(layer.q_proj(hidden).view(shape)).transpose(1, 2)
    k = repeat_kv(k_norm(layer.k_proj(hidden).view(shape)).transpose(1, 2), layer.num_key_value_groups)
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


@pytest.mark.parametrize("family, block_rows", [*((f, 7) for f in FAMILIES), ("llama", 512)])
def test_one_attention_matches_brute_force_in_every_family(family, block_rows, monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", block_rows)  # 7: blocks that split the window; 512: one block
    model = _tiny(family)
    layer, rotary = model.model.layers[0].self_attn, model.model.rotary_emb
    enable_selfextend(model, ContextExtension("selfextend", window=4, group=3))
    hidden = torch.randn(1, 30, 32)
    with torch.no_grad():
        ours, _ = layer(hidden_states=hidden, position_ids=torch.arange(30)[None])
        reference = _reference_attention(layer, rotary, hidden, window=4, group=3)
    assert torch.allclose(ours, reference, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_decoding_with_cache_matches_full_recompute(family, monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", 5)
    model = _tiny(family)
    enable_selfextend(model, ContextExtension("selfextend", window=4, group=3))
    ids = torch.randint(0, 64, (1, 24))
    with torch.no_grad():
        full = model(ids).logits[0, -4:]
        out = model(ids[:, :20], use_cache=True)
        steps = []
        for t in range(20, 24):
            out = model(ids[:, t:t + 1], cache=out.past_key_values, use_cache=True)
            steps.append(out.logits[0, -1])
        plain = _tiny(family)(ids).logits[0, -4:]
    assert torch.allclose(torch.stack(steps), full, atol=1e-4)
    assert not torch.allclose(full, plain, atol=1e-3)  # the grouping did change something


@pytest.mark.parametrize("attention", ["sdpa", "eager"])  # boolean and additive masks
def test_left_padding_matches_unpadded(attention, monkeypatch):
    monkeypatch.setattr(rope, "BLOCK_ROWS", 5)
    model = _tiny("llama", attn_implementation=attention)
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


@pytest.mark.parametrize("family", FAMILIES)
def test_inside_the_window_equals_no_extension(family):
    ids = torch.randint(0, 64, (2, 20))
    model = _tiny(family)
    with torch.no_grad():
        plain = model(ids).logits
        enable_selfextend(model, ContextExtension("selfextend", window=32, group=4))
        assert torch.allclose(model(ids).logits, plain, atol=1e-5)


@pytest.mark.parametrize("family, settings", [
    ("Olmo2", {}),  # q/k norm over the whole projection
    ("Cohere", {"use_qk_norm": True}),  # interleaved rotation, per-head LayerNorm
    ("StableLm", {"partial_rotary_factor": 0.5}),  # half the head dimensions rotated
])
def test_other_rope_families_group_1_is_exact(family, settings):
    """G=1 puts grouped positions on the true ones: past W=4 the far map must equal the plain model."""
    import transformers

    torch.manual_seed(0)
    config = getattr(transformers, f"{family}Config")(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, eos_token_id=None, **settings)
    model = getattr(transformers, f"{family}ForCausalLM")(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                param.add_(torch.randn_like(param) * 0.3)
        ids = torch.randint(0, 64, (1, 20))
        plain = model(ids).logits
        enable_selfextend(model, ContextExtension("selfextend", window=4, group=1))
        assert torch.allclose(model(ids).logits, plain, atol=1e-5)


def test_attention_without_projections_is_refused_by_class():
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ConfigError, match=r"Llama, Qwen2 and alike\); GPT2LMHeadModel has no such attention"):
        enable_selfextend(model, ContextExtension("selfextend"))


def test_attention_parts_it_would_skip_are_refused():
    from transformers import StableLmConfig, StableLmForCausalLM

    model = StableLmForCausalLM(StableLmConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                               num_attention_heads=4, qk_layernorm=True, eos_token_id=None))
    with pytest.raises(ConfigError, match="does not implement q_layernorm, k_layernorm of StableLmAttention"):
        enable_selfextend(model, ContextExtension("selfextend"))


# ---- the packaged models, for real -------------------------------------------------------------

PROSE = ("The harbour was quiet in the early morning. Fishing boats rocked against the pier while gulls "
         "circled above the market, where traders were setting out baskets of bread, cheese and apples. ")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
PASSKEY = "71432"


def _greedy(generator: TransformersGenerator, prompt: str, tokens: int):
    """Greedy ids and the raw logits of every step (step 0: the prompt's last position)."""
    ids = torch.tensor([generator.tokenizer(prompt, add_special_tokens=False).input_ids])
    with torch.inference_mode():
        out = generator.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                       min_new_tokens=tokens, do_sample=False, output_logits=True,
                                       return_dict_in_generate=True, pad_token_id=generator._pad_id)
    return out.sequences[0, ids.shape[1]:], torch.stack(out.logits)[:, 0]


@pytest.fixture(scope="module")
def plain_qwen():
    return TransformersGenerator.from_settings("qwen2.5-0.5b", dtype="float32")


def _assert_equal_to_no_extension(plain: TransformersGenerator, name: str):
    """A ~210-token prompt under W=512: every distance is a neighbour distance. The logits differ
    only by float32 rounding in another order of operations (scores in blocks, one softmax over a
    merged map): measured max |difference| over the 16 steps 1.8e-5 (qwen2.5-0.5b) and 3.5e-5
    (SmolLM2), against logit ranges of 31 and 36. 1e-3 of the range (~0.03) is ~1000x that
    rounding yet well below what grouping changes (0.74 on the passkey prompt below)."""
    extended = TransformersGenerator.from_settings(name, ContextExtension("selfextend", window=512, group=8), dtype="float32")
    prompt = plain.chat_prompt("You are a helpful assistant.", "Where were the boats? " + PROSE * 5)
    assert 180 < plain.count_tokens(prompt) < 512
    plain_ids, plain_logits = _greedy(plain, prompt, 16)
    ids, logits = _greedy(extended, prompt, 16)
    assert ids.tolist() == plain_ids.tolist()  # greedy answers identical, decoding through the cache included
    tolerance = 1e-3 * (plain_logits[0].max() - plain_logits[0].min())
    assert (logits - plain_logits).abs().max() < tolerance


@pytest.mark.slow
def test_qwen_inside_the_window_equals_no_extension(plain_qwen):
    _assert_equal_to_no_extension(plain_qwen, "qwen2.5-0.5b")


@pytest.mark.slow
def test_llama_inside_the_window_equals_no_extension():
    _assert_equal_to_no_extension(TransformersGenerator.from_settings("SmolLM2-135M-Instruct", dtype="float32"),
                                  "SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_qwen_beyond_the_window_still_finds_the_passkey(plain_qwen):
    """W=64, G=4 on a ~300-token prompt: most of it is seen at grouped positions. qwen2.5-0.5b
    retrieves the passkey with and without the extension; the first logits differ (0.74 measured)."""
    extended = TransformersGenerator.from_settings("qwen2.5-0.5b", ContextExtension("selfextend", window=64, group=4),
                                       dtype="float32")
    text = FILLER * 5 + f" The pass key is {PASSKEY}. Remember it. {PASSKEY} is the pass key. " + FILLER * 5
    prompt = plain_qwen.chat_prompt("You are a helpful assistant.",
                                    f"There is a pass key hidden in this text. {text}\nWhat is the pass key?")
    prompt += "The pass key is"  # the answer's first words given: the 6 tokens left are the digits
    assert 256 < plain_qwen.count_tokens(prompt) < 400
    plain_ids, plain_logits = _greedy(plain_qwen, prompt, 6)
    ids, logits = _greedy(extended, prompt, 6)
    assert torch.isfinite(logits).all()
    assert (logits[0] - plain_logits[0]).abs().max() > 0.1  # the far tokens really moved
    assert PASSKEY in plain_qwen.tokenizer.decode(plain_ids)
    assert PASSKEY in extended.tokenizer.decode(ids)
