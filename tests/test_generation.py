"""The generator: packaged SmolLM2 for real on small inputs (SelfExtend on tiny models: tests/test_selfextend.py).

The dequantised SmolLM2 copy lives in the longrag cache ($LONGRAG_CACHE or the user cache dir);
the first run writes it (~20 s), later runs load it in under a second. No hub access.
"""

import pytest
import torch
from transformers import LlamaConfig

from longrag.errors import ConfigError, InputError, ModelNotFoundError
from longrag.generation import ContextExtension, TransformersGenerator, effective_window
from longrag.generation.base import REPEAT_TOKENS, TextPieces
from longrag.generation.generator import _Streamer, _StopOnLoop
from longrag.generation.weights import file_sha256
from longrag.generation.context_extension import enable_selfextend, scale_rope


@pytest.fixture(scope="module")
def smol():
    return TransformersGenerator.from_settings("SmolLM2-135M-Instruct")


def _logits(generator: TransformersGenerator, text: str) -> torch.Tensor:
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
    linear = TransformersGenerator.from_settings("smollm2-135m", ContextExtension("linear", factor=1.0))
    assert linear.model.config.rope_parameters["rope_type"] == "linear"
    assert torch.allclose(_logits(linear, PROSE), _logits(smol, PROSE), atol=1e-4)


@pytest.mark.slow  # real packaged models
def test_selfextend_inside_the_window_is_exact(smol):
    """Shorter than W, every distance is a neighbour distance: same logits as no extension."""
    text = PROSE * 3  # ~120 tokens
    plain = _logits(smol, text)
    patched = TransformersGenerator.from_settings("SmolLM2-135M-Instruct", ContextExtension("selfextend", window=512, group=8))
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
        TransformersGenerator.from_settings("org/does-not-exist")


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
