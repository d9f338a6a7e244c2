"""Indexing on a Ray cluster (a local one started by the test) gives the index a local run gives."""
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")  # .ci/setup installs it

import cloudpickle  # noqa: E402

import tests.helpers  # noqa: E402
from longrag import Pipeline  # noqa: E402
from longrag.index import IndexStore  # noqa: E402
from tests.helpers import REPO, FakeEncoder  # noqa: E402

cloudpickle.register_pickle_by_value(tests.helpers)  # the fake encoder travels to the actors by value


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_fake_encoder_on_ray_equals_a_local_run(tmp_path, corpus, cluster):
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    report = Pipeline.from_config(None, encoder=FakeEncoder()).index([corpus], index_dir=on_ray, progress=False,
                                                                     ray="auto")
    Pipeline.from_config(None, encoder=FakeEncoder()).index([corpus], index_dir=local, progress=False)
    assert report.added == 3 and report.encoded_tokens > 0
    assert IndexStore(on_ray).documents() == IndexStore(local).documents()
    for query in ("purr mice", "rockets thrust", "green tea"):
        assert Pipeline.load(on_ray, encoder=FakeEncoder()).search(query) == \
            Pipeline.load(local, encoder=FakeEncoder()).search(query)


@pytest.mark.slow  # each actor loads the real packaged MiniLM
def test_real_model_on_ray_equals_a_local_run(tmp_path, cluster):
    folder = REPO / "examples" / "contracts"
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    Pipeline.from_config(None).index([folder], index_dir=on_ray, progress=False, ray="auto")
    Pipeline.from_config(None).index([folder], index_dir=local, progress=False)
    a, b = IndexStore(on_ray), IndexStore(local)
    assert a.documents() == b.documents()
    for doc_id in a.documents():
        (spans_a, vectors_a), (spans_b, vectors_b) = a.segments_of(doc_id), b.segments_of(doc_id)
        assert spans_a == spans_b
        # the same model on the same segments in other batches: equal within float32 rounding
        np.testing.assert_allclose(vectors_a, vectors_b, atol=1e-4)
    pipe_a, pipe_b = Pipeline.load(on_ray), Pipeline.load(local)
    for query in ("Can I use the licensor's trademarks?", "patent licence ends if I sue", "warranty disclaimer"):
        hits_a, hits_b = pipe_a.search(query, k=5), pipe_b.search(query, k=5)
        assert [(h.doc_id, h.start, h.end) for h in hits_a] == [(h.doc_id, h.start, h.end) for h in hits_b]
        assert [h.score for h in hits_a] == pytest.approx([h.score for h in hits_b], abs=1e-4)


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, corpus):
    out = tmp_path / "idx"
    run = subprocess.run([sys.executable, "-m", "longrag.cli", "index", str(corpus), "--index", str(out),
                          "--ray", "ray://127.0.0.1:1", "--quiet"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().startswith("error: cannot reach the Ray cluster at 'ray://127.0.0.1:1'")
    assert len(run.stderr.strip().splitlines()) == 1
    assert not out.exists()
