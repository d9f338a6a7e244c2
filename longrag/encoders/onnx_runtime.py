"""The unmodified encoder run by ONNX Runtime (`encoder.runtime: onnx`).

Same graph, same float32 weights, same vectors as torch (cosine ≥ 0.99999, tested); what it saves is
torch's per-call overhead, which is most of a short query's time on the CPU (docs/results.md,
"Encoder runtimes"). The model is exported once per set of weights into `cache_dir()/onnx/`.
Position-extended models, late chunking and position tuning stay on torch.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..errors import ConfigError, ModelNotFoundError
from ..files import atomic_directory, cache_dir

EXPORT_VERSION = 1  # bump when the export below changes
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INSTALL = "pip install onnxruntime onnx (both are longrag dependencies), or set encoder.runtime: torch"


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxModel:
    """Called like the transformers model (`model(**inputs).last_hidden_state`), run by ONNX Runtime."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same threads torch was given
        options.log_severity_level = 3
        # its threads otherwise spin-wait after each query, taking the cores FAISS and BM25 need next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        feed = {k: inputs[k].numpy() if k in inputs else np.zeros_like(inputs["input_ids"].numpy()) for k in self.inputs}
        return SimpleNamespace(last_hidden_state=torch.from_numpy(self.session.run(None, feed)[0]))


def check_onnx() -> None:
    if not onnx_available():
        raise ConfigError(f"encoder.runtime 'onnx' needs onnxruntime and onnx: {INSTALL}")


def onnx_model(model: torch.nn.Module, name: str) -> OnnxModel:
    """`model` (the encoder `name`) on ONNX Runtime."""
    check_onnx()
    return OnnxModel(exported(model, name))


class _LastHiddenState(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, inputs: tuple[str, ...]):
        super().__init__()
        self.model, self.inputs = model, inputs

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.inputs, tensors))).last_hidden_state


def exported(model: torch.nn.Module, name: str) -> Path:
    """The cached ONNX file of `model` (exported now if absent); keyed by every weight's bytes."""
    digest = hashlib.sha256(f"{EXPORT_VERSION} {torch.__version__}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = cache_dir() / "onnx" / f"{Path(name).name}-{digest.hexdigest()[:16]}"
    path = folder / "model.onnx"
    if path.exists():
        return path
    inputs = tuple(k for k in INPUTS if k != "token_type_ids" or getattr(model.config, "type_vocab_size", 0))
    sample = tuple(torch.ones(2, 8, dtype=torch.long) if k != "token_type_ids" else torch.zeros(2, 8, dtype=torch.long)
                   for k in inputs)
    try:
        with atomic_directory(folder) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing
            torch.onnx.export(_LastHiddenState(model, inputs).eval(), sample, str(tmp / "model.onnx"),
                              input_names=list(inputs), output_names=["last_hidden_state"], opset_version=17,
                              dynamic_axes={k: {0: "batch", 1: "tokens"} for k in (*inputs, "last_hidden_state")},
                              dynamo=False)
    except Exception as exc:  # an architecture the exporter cannot trace
        raise ModelNotFoundError(f"encoder {name!r} cannot be exported to ONNX ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); set encoder.runtime: torch") from None
    return path
