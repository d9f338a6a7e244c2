"""Encoding on a Ray cluster: the per-document work of indexing (tokenize, segment, encode) runs as
Ray Data `map_batches` over a pool of encoder actors (one model replica each, a GPU each where the
cluster has them); this process reads the files, writes the shard and publishes the generation as
a local run does, so the index is the one `Pipeline.load` opens. Ray is the scheduler: nothing
here decides where work goes.

    longrag index ./archive --ray auto                 # the cluster this machine belongs to
    longrag index ./archive --ray ray://head:10001     # a remote cluster (Ray Client)
    longrag index ./archive --ray local                # a Ray instance started here
"""
from __future__ import annotations

import json
from typing import Iterable, Iterator

import numpy as np

from .config import Config, load_config
from .encoders import Encoder, load_encoder
from .errors import ConfigError, InputError
from .indexing import DocumentEncoder, Encoded
from .types import Document

DOCUMENTS_PER_BATCH = 64  # documents a Ray Data batch hands one actor


def connect(address: str) -> None:
    """Join (or, for "local", start) a Ray cluster; an unreachable address is one clear error."""
    try:
        import ray
    except ImportError:
        raise ConfigError("indexing with --ray needs Ray: .venv/bin/pip install -e '.[ray]'") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, logging_level="ERROR", log_to_driver=False,
                 include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot reach the Ray cluster at {address!r} ({detail}); nothing was written: start it "
                         "with `ray start --head`, or pass --ray local") from None


class _EncodeActor:
    """One encoder replica: Ray Data batches of documents in, their `Encoded` rows out."""

    def __init__(self, config: dict, encoder: Encoder | None):
        settings = load_config(config)
        self.documents = DocumentEncoder(settings, encoder if encoder is not None else load_encoder(settings.encoder))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        docs = [Document(doc_id=str(d), path=str(p), text=str(t), sha256=str(s), metadata=json.loads(m))
                for d, p, t, s, m in zip(batch["doc_id"], batch["path"], batch["text"], batch["sha256"],
                                         batch["metadata"])]
        out: dict[str, list] = {key: [] for key in ("row", "segments", "vectors", "document_vector",
                                                     "encoded_tokens", "windowed", "cut")}
        for done in self.documents.encode_all(docs):
            out["row"].append(json.dumps(done.row))
            out["segments"].append(json.dumps(done.segments))
            out["vectors"].append(np.asarray(done.vectors, np.float32).tobytes())
            out["document_vector"].append(b"" if done.document_vector is None else
                                          np.asarray(done.document_vector, np.float32).tobytes())
            out["encoded_tokens"].append(done.encoded_tokens)
            out["windowed"].append(bool(done.windowed))
            out["cut"].append(done.cut)
        return out


def ray_encoding(config: Config, encoder: Encoder | None = None, replicas: int | None = None):
    """An `encode_all` for `Indexer` that runs on the connected Ray cluster. `encoder`: an encoder
    object shipped to every actor (for tests); by default each actor loads `config.encoder`."""
    import ray

    def encode_all(documents: Iterable[Document]) -> Iterator[Encoded]:
        documents = list(documents)  # the driver reads the run's texts and ships them to the actors
        if not documents:
            return
        ray.data.DataContext.get_current().execution_options.preserve_order = True  # same shard order as a local run
        dataset = ray.data.from_items([{"doc_id": d.doc_id, "path": d.path, "text": d.text, "sha256": d.sha256,
                                        "metadata": json.dumps(d.metadata)} for d in documents])
        gpus = ray.cluster_resources().get("GPU", 0)
        size = replicas or max(1, int(gpus) if gpus else int(ray.cluster_resources().get("CPU", 1)) // 2)
        encoded = dataset.map_batches(
            _EncodeActor, fn_constructor_kwargs={"config": config.to_dict(), "encoder": encoder},
            batch_size=DOCUMENTS_PER_BATCH, batch_format="numpy", concurrency=size,
            num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)
        for row in encoded.iter_rows():
            segments = json.loads(row["segments"])
            vectors = np.frombuffer(row["vectors"], np.float32).reshape(len(segments), -1) if segments else \
                np.zeros((0, 0), np.float32)
            vector = np.frombuffer(row["document_vector"], np.float32) if len(row["document_vector"]) else None
            yield Encoded(json.loads(row["row"]), segments, vectors.copy(), vector, int(row["encoded_tokens"]),
                          bool(row["windowed"]), int(row["cut"]))

    return encode_all
