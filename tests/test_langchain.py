"""LangChain integration: the standard langchain-tests suites plus checks of content and metadata.

One small index (5 licences of examples/contracts, real packaged MiniLM) is built once per module
in a temp dir and shared by every retriever the suites construct.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from longrag import Pipeline
from longrag.integrations.langchain import LongragEmbeddings, LongragRetriever
from tests.helpers import CONTRACTS, REPO, FakeEncoder

FILES = ["Apache-2.0.txt", "MIT.txt", "GPL-3.0-only.txt", "MPL-2.0-no-copyleft-exception.txt", "BSD-3-Clause.txt"]
QUERY = "what happens to my patent licence if I sue a contributor"
METADATA = {"doc_id", "path", "score", "start", "end"}

# The standard suites mix sync and async tests; mark them for pytest-asyncio whatever its
# asyncio_mode, and silence its note about the sync ones carrying the mark.
ASYNC = [pytest.mark.asyncio,
         pytest.mark.filterwarnings("ignore:.*marked with '@pytest.mark.asyncio' but it is not an async function")]


@pytest.fixture(scope="module")
def contracts(tmp_path_factory):
    """An indexed Pipeline over a copy of FILES (the real packaged encoder)."""
    root = tmp_path_factory.mktemp("langchain")
    docs = root / "docs"
    docs.mkdir()
    for name in FILES:
        shutil.copy(CONTRACTS / name, docs / name)
    pipe = Pipeline.from_config({"index": {"mode": "chunks"}})  # hit scores are cosines (hybrid: fused ranks)
    pipe.index([docs], index_dir=root / "index", progress=False)
    return pipe


# -- standard suites ------------------------------------------------------------------------------
class TestRetrieverStandard(RetrieversIntegrationTests):
    pytestmark = [*ASYNC, pytest.mark.slow]  # real packaged models

    @pytest.fixture(autouse=True)
    def _shared_pipeline(self, contracts):
        type(self).pipeline = contracts

    @property
    def retriever_constructor(self):
        return LongragRetriever

    @property
    def retriever_constructor_params(self):
        return {"pipeline": self.pipeline}

    @property
    def retriever_query_example(self):
        return QUERY


class TestEmbeddingsStandard(EmbeddingsIntegrationTests):
    pytestmark = [*ASYNC, pytest.mark.slow]  # real packaged models

    @pytest.fixture(autouse=True)
    def _shared_pipeline(self, contracts):
        type(self).pipeline = contracts

    @property
    def embeddings_class(self):
        return LongragEmbeddings

    @property
    def embedding_model_params(self):
        return {"pipeline": self.pipeline}


class TestEmbeddingsUnitStandard(EmbeddingsUnitTests):
    pytestmark = ASYNC

    @property
    def embeddings_class(self):
        return LongragEmbeddings

    @property
    def embedding_model_params(self):
        return {"pipeline": Pipeline.from_config(None, encoder=FakeEncoder())}


# -- our own checks -------------------------------------------------------------------------------
@pytest.mark.slow  # real packaged models
def test_documents_are_whole_spans_with_citation_metadata(contracts):
    docs = LongragRetriever(pipeline=contracts).invoke(QUERY)
    hits = contracts.search(QUERY, k=4)
    assert len(docs) == 4
    assert [d.metadata["doc_id"] for d in docs] == [h.doc_id for h in hits]
    assert docs[0].metadata["doc_id"] in {"Apache-2.0.txt", "GPL-3.0-only.txt", "MPL-2.0-no-copyleft-exception.txt"}
    for doc, hit in zip(docs, hits):
        assert isinstance(doc, Document)
        # plain-text licences record numbered clauses: a span under one names its section (no pages: not a PDF)
        assert set(doc.metadata) == METADATA | {"sentence"} | ({"section"} if hit.section else set())
        assert doc.metadata.get("section") == (hit.section or None)
        assert hit.start <= doc.metadata["sentence"][0] < doc.metadata["sentence"][1] <= hit.end  # the matched sentence
        meta = doc.metadata
        assert (meta["path"], meta["score"], meta["start"], meta["end"]) == (hit.path, hit.score, hit.start, hit.end)
        source = open(meta["path"], encoding="utf-8").read()
        assert doc.page_content == source[meta["start"]:meta["end"]]
        assert meta["end"] - meta["start"] > len(hit.snippet)  # the full span, not the shortened snippet


@pytest.mark.slow  # real packaged models
def test_k_default_and_per_call(contracts):
    retriever = LongragRetriever(pipeline=contracts)
    assert retriever.k == 4
    assert len(retriever.invoke(QUERY)) == 4
    assert len(retriever.invoke(QUERY, k=2)) == 2
    assert len(LongragRetriever(pipeline=contracts, k=5).invoke(QUERY)) == 5


@pytest.mark.slow  # real packaged models
def test_embeddings_are_the_index_vectors(contracts):
    embeddings = LongragEmbeddings(contracts)
    encoder = contracts.encoder
    assert embeddings.encoder is encoder
    assert embeddings.embed_query(QUERY) == pytest.approx(encoder.encode_queries([QUERY])[0].tolist(), abs=1e-6)

    long_text = (CONTRACTS / "GPL-3.0-only.txt").read_text(encoding="utf-8")
    ids = encoder.tokenize(long_text).ids
    assert len(ids) > encoder.segment_window
    short, long_vec = embeddings.embed_documents(["Cats purr.", long_text])
    assert long_vec == pytest.approx(encoder.encode_document(ids).tolist(), abs=1e-5)
    assert short == pytest.approx(encoder.encode_ids([encoder.tokenize("Cats purr.").ids])[0].tolist(), abs=1e-5)
    assert np.linalg.norm(long_vec) == pytest.approx(1.0, abs=1e-5)

    # the retriever's score is the cosine of the query and the matched span's vector
    doc = LongragRetriever(pipeline=contracts, k=1).invoke(QUERY)[0]
    span_vec = embeddings.embed_documents([doc.page_content])[0]
    assert float(np.dot(embeddings.embed_query(QUERY), span_vec)) == pytest.approx(doc.metadata["score"], abs=1e-3)


@pytest.mark.slow  # real packaged models
def test_from_config_builds_the_configured_encoder():
    embeddings = LongragEmbeddings.from_config({"encoder": {"matryoshka_dim": 128}})
    assert embeddings.pipeline.config.encoder.matryoshka_dim == 128
    assert len(embeddings.embed_query("governing law")) == 128


def test_core_never_imports_langchain_and_a_missing_extra_says_how_to_install():
    script = """
import importlib, pkgutil, sys
import longrag
for module in pkgutil.walk_packages(longrag.__path__, "longrag."):
    if module.name != "longrag.integrations.langchain":
        importlib.import_module(module.name)
assert not [m for m in sys.modules if m.startswith("langchain")], sorted(m for m in sys.modules if m.startswith("langchain"))
sys.modules["langchain_core"] = None  # as if the extra were not installed
try:
    import longrag.integrations.langchain
except ImportError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=os.environ)
    assert out.returncode == 0, out.stderr
    assert "pip install 'longrag[langchain]'" in out.stdout
