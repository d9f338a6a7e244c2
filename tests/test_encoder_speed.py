"""Encoder speed features on the packaged MiniLM: length-bucketed, token-budgeted batches and bf16."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from longrag.config import EncoderConfig, load_config
from longrag.encoders import load_encoder, transformer as base
from longrag.types import balanced_windows
from longrag.encoders.late_chunking import late_chunk_vectors
from longrag.errors import ConfigError
from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the speed benchmark's FLOP model is benchmark code
import encoder_cost  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return load_encoder(EncoderConfig(dtype="float32", batch_tokens=1024))


def _segments(encoder, lengths):
    text = open(__file__, encoding="utf-8").read() * 4
    ids = encoder.tokenize(text).ids
    return [ids[i * 7: i * 7 + n] for i, n in enumerate(lengths)]


@pytest.mark.slow  # real packaged models
def test_bucketed_batches_give_the_vectors_of_one_by_one_encoding_in_input_order(encoder):
    lengths = [5, 300, 17, 120, 250, 8, 64, 300, 33, 190]  # shuffled on purpose
    segments = _segments(encoder, lengths)
    seen = []
    forward = encoder._forward

    def spy(batch, model):
        seen.append([len(x) for x in batch])
        return forward(batch, model)

    encoder._forward = spy
    try:
        together = encoder.encode_ids(segments)
    finally:
        del encoder._forward
    alone = np.vstack([encoder.encode_ids([s]) for s in segments])
    np.testing.assert_allclose(together, alone, atol=2e-6)
    assert len(seen) > 1  # the 1024-token budget split the batch
    for batch in seen:  # padded tokens (longest input + [CLS]/[SEP] per row) stay within the budget
        assert len(batch) == 1 or len(batch) * (max(batch) + encoder.n_special) <= 1024
    flat = [n for batch in seen for n in batch]
    assert flat == sorted(lengths, reverse=True)  # sorted by length: neighbours share a batch, little padding


@pytest.mark.slow  # real packaged models
def test_bfloat16_is_close_to_float32_but_really_computed_in_bfloat16(encoder):
    fast = load_encoder(EncoderConfig(dtype="bfloat16"))
    segments = _segments(encoder, [40, 200, 500])
    a, b = encoder.encode_ids(segments), fast.encode_ids(segments)
    cosines = (a * b).sum(1)
    assert cosines.min() > 0.999
    assert not np.allclose(a, b, atol=1e-6)  # bf16 matmuls round: identical vectors would mean it was not applied
    q32, q16 = encoder.encode_queries(["who sues whom?"]), fast.encode_queries(["who sues whom?"])
    assert (q32 * q16).sum() > 0.999 and q16.dtype == np.float32
    assert fast.describe()["dtype"] == "bfloat16" and encoder.describe()["dtype"] is None
    # segments run on a bfloat16 copy; the float32 model stays for ONNX export, positions and tuning
    assert fast.segment_runner.dtype == torch.bfloat16 and fast.model.dtype == torch.float32


@pytest.mark.slow  # real packaged models
def test_bfloat16_late_chunking_and_position_methods_run(encoder):
    fast = load_encoder(EncoderConfig(dtype="bfloat16", document_method="pi", target_length=1024))
    slow = load_encoder(EncoderConfig(dtype="float32", document_method="pi", target_length=1024))
    ids = _segments(encoder, [900])[0]
    assert float(fast.encode_document(ids) @ slow.encode_document(ids)) > 0.998
    spans = [(0, 300), (300, 900)]
    cos = (late_chunk_vectors(fast, ids, spans) * late_chunk_vectors(slow, ids, spans)).sum(1)
    assert cos.min() > 0.998


def test_dtype_setting_is_checked():
    assert load_config({"encoder": {"dtype": "bfloat16"}}).encoder.dtype == "bfloat16"
    with pytest.raises(ConfigError, match="encoder.dtype"):
        load_config({"encoder": {"dtype": "float16"}})


@pytest.mark.slow  # real packaged models
@pytest.mark.parametrize("method", ["truncate", "windows (pcw)", "pi 8192", "chunks256", "late_chunks",
                                    "late_chunks_pi 4096"])
def test_speed_benchmark_counts_the_forward_passes_that_really_run(method):
    """The speed benchmark's FLOP estimate (benchmarks/encoder_cost.py) rests on its list of forward
    windows: it must be the widths the encoder actually runs (one row each; batched chunks counted per row)."""
    settings, kind = encoder_cost.METHODS[method]
    enc = load_encoder(EncoderConfig(dtype="float32", runtime="torch", **settings))  # torch: hooks see every forward
    n = 1500
    ids = encoder_cost.document_ids(enc.tokenizer, n)
    assert len(ids) == n
    widths = []

    def hook(module, args, kwargs):
        mask = kwargs["attention_mask"]
        widths.extend(int(x) for x in mask.sum(1))

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in {enc.model, enc.long_model} if m is not None]
    spans = balanced_windows(n, encoder_cost.CHUNK)
    if kind == "document":
        enc.encode_document(ids)
    elif kind == "chunks":
        enc.encode_ids([ids[a:b] for a, b in spans])
    else:
        late_chunk_vectors(enc, ids, spans, overlap=enc.settings.late_chunk_overlap)
    for h in handles:
        h.remove()
    assert sorted(widths) == sorted(encoder_cost.forward_windows(enc, settings, kind, n))


@pytest.mark.slow  # real packaged models
def test_speed_benchmark_flop_model_for_minilm(encoder):
    per_layer = 4 * 384 * 384 + 2 * 384 * 1536  # Q, K, V, output; feed-forward in and out
    assert encoder_cost.linear_params(encoder) == 6 * per_layer
    assert encoder_cost.model_flops(encoder, [512, 100]) == sum(2 * 6 * per_layer * w + 4 * 6 * w * w * 384
                                                                for w in (512, 100))


@pytest.mark.slow  # real packaged models
def test_auto_dtype_is_bfloat16_exactly_where_the_cpu_has_native_bf16(monkeypatch):
    flags = Path("/proc/cpuinfo").read_text().split()
    assert base.native_bfloat16("cpu") == ("amx_bf16" in flags or "avx512_bf16" in flags)
    assert base.resolve_dtype("float32") == "float32" and base.resolve_dtype("bfloat16") == "bfloat16"
    monkeypatch.setattr(base, "native_bfloat16", lambda device="cpu": False)
    assert base.resolve_dtype("auto") == "float32"
    monkeypatch.setattr(base, "native_bfloat16", lambda device="cpu": True)
    assert base.resolve_dtype("auto") == "bfloat16"
    enc = load_encoder(EncoderConfig(dtype="auto"))
    assert enc.dtype == "bfloat16" and enc.describe()["dtype"] == "bfloat16"  # the manifest records what ran


def test_default_dtype_is_auto():
    assert EncoderConfig().dtype == "auto" and load_config(None).encoder.dtype == "auto"


@pytest.mark.slow  # real packaged models
def test_onnx_runtime_gives_torchs_vectors_for_segments_and_queries(encoder):
    torch_encoder = load_encoder(EncoderConfig(dtype="float32", runtime="torch"))
    onnx_encoder = load_encoder(EncoderConfig(dtype="float32", runtime="onnx"))
    assert torch_encoder.runtime == {"queries": "torch", "segments": "torch"}
    assert onnx_encoder.runtime == {"queries": "onnx", "segments": "onnx"}
    segments = _segments(encoder, [3, 40, 255, 510, 120])  # one batch of mixed lengths: padding is masked
    a, b = torch_encoder.encode_ids(segments), onnx_encoder.encode_ids(segments)
    # same graph and weights, other kernels: float32 rounding only
    assert (a * b).sum(1).min() > 0.99999
    queries = ["who may use the trademarks", "governing law"]
    assert (torch_encoder.encode_queries(queries) * onnx_encoder.encode_queries(queries)).sum(1).min() > 0.99999
    assert onnx_encoder.describe()["runtime"] == onnx_encoder.runtime  # the manifest records what ran


@pytest.mark.slow  # real packaged models
def test_auto_runtime_is_onnx_for_queries_on_the_cpu_only(monkeypatch):
    auto = {"queries": "onnx", "segments": "torch"}  # segment batches are matrix-bound: torch measured faster
    assert base.resolve_runtime("auto", "float32", "cpu") == auto
    assert load_encoder(EncoderConfig(dtype="float32")).runtime == auto
    assert base.resolve_runtime("auto", "bfloat16", "cpu") == auto  # queries in float32 even when segments are not
    torch_only = {"queries": "torch", "segments": "torch"}
    assert base.resolve_runtime("auto", "float32", "cuda") == torch_only
    assert base.resolve_runtime("torch", "float32", "cpu") == torch_only
    assert base.resolve_runtime("onnx", "float32", "cpu") == {"queries": "onnx", "segments": "onnx"}
    monkeypatch.setattr(base, "onnx_available", lambda: False)
    assert base.resolve_runtime("auto", "float32", "cpu") == torch_only  # without onnxruntime: torch, not an error


@pytest.mark.slow  # real packaged models
def test_onnx_runtime_settings_that_cannot_run_are_config_errors(monkeypatch):
    for bad in ({"runtime": "tensorrt"}, {"runtime": "onnx", "dtype": "bfloat16"}, {"runtime": "onnx", "device": "cuda"}):
        with pytest.raises(ConfigError, match="encoder.runtime"):
            load_config({"encoder": bad})
    from longrag.encoders import onnx_runtime
    monkeypatch.setattr(onnx_runtime, "onnx_available", lambda: False)
    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        load_encoder(EncoderConfig(dtype="float32", runtime="onnx"))


@pytest.mark.slow  # real packaged models
def test_an_index_built_on_torch_is_searched_on_onnx_without_re_encoding(tmp_path):
    from longrag import Pipeline
    from tests.helpers import CONTRACTS

    built = Pipeline.from_config({"encoder": {"dtype": "float32", "runtime": "torch"}})
    built.index([CONTRACTS], index_dir=tmp_path / "idx", progress=False)
    reader = Pipeline.load(tmp_path / "idx", config={"encoder": {"dtype": "float32", "runtime": "onnx"}})
    assert reader.encoder.runtime["queries"] == "onnx"  # the reader's runtime, not the builder's
    hits = reader.search("can I use the licensor's trademarks", k=5)
    assert [h.doc_id for h in hits] == [h.doc_id for h in built.search("can I use the licensor's trademarks", k=5)]
    assert reader.store.manifest.encoder["runtime"]["segments"] == "torch"  # the manifest records what encoded it
