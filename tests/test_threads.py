"""Pipeline.search from many threads at once: same hits as serial calls, one store, one encoder.

Real packaged MiniLM on examples/contracts.
"""
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import longrag.pipeline as pipeline_module
from longrag import Pipeline
from tests.helpers import CONTRACTS

pytestmark = pytest.mark.slow  # real packaged models

QUERIES = [
    "what happens to my patent licence if I sue a contributor",
    "can I use the name of the copyright holder to promote my product",
    "disclaimer of warranty: the software is provided as is",
    "must I publish the source code of a network service",
    "governing law and jurisdiction for disputes",
    "attribution notices to keep when redistributing binaries",
]
THREADS = 8
ROUNDS = 3


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("threads") / "contracts"
    Pipeline.from_config(None).index([CONTRACTS], index_dir=target, progress=False)
    return target


def test_concurrent_search_matches_serial_and_loads_once(index_dir, monkeypatch):
    serial_pipe = Pipeline.load(index_dir)
    expected = {q: serial_pipe.search(q, k=5) for q in QUERIES}
    assert all(len(hits) == 5 for hits in expected.values())

    stores, encoders = [], []
    real_store, real_encoder = pipeline_module.IndexStore, pipeline_module.load_encoder
    monkeypatch.setattr(pipeline_module, "IndexStore", lambda *a, **kw: stores.append(1) or real_store(*a, **kw))
    monkeypatch.setattr(pipeline_module, "load_encoder", lambda *a, **kw: encoders.append(1) or real_encoder(*a, **kw))

    # nothing loaded yet: the first searches race to open the store and load the encoder
    pipe = Pipeline.from_config(None, index_dir=index_dir)
    start = threading.Barrier(THREADS)

    def worker(seed: int):
        order = [q for _ in range(ROUNDS) for q in QUERIES]
        random.Random(seed).shuffle(order)
        start.wait()
        return [(q, pipe.search(q, k=5), threading.get_ident()) for q in order]

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for batch in pool.map(worker, range(THREADS)) for r in batch]

    assert len(results) == THREADS * ROUNDS * len(QUERIES)
    assert len({ident for _, _, ident in results}) == THREADS
    for query, hits, _ in results:
        assert hits == expected[query], query
    assert len(stores) == 1, "the index store was opened more than once"
    assert len(encoders) == 1, "the encoder was loaded more than once"
    assert pipe.store is pipe.store
