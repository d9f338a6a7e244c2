"""`longrag tune-positions` with the packaged MiniLM on the licence texts, a few steps at 1024 tokens."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from click.testing import CliRunner
from safetensors.torch import load_file

from longrag.cli import main
from longrag.config import EncoderConfig
from longrag.encoders import load_encoder
from longrag.encoders import tuning
from longrag.errors import ConfigError, InputError
from tests.helpers import CONTRACTS, assert_same_vectors

pytestmark = pytest.mark.slow  # real packaged models

LENGTH = 1024
SETTINGS = tuning.TuneSettings(length=LENGTH, steps=3, batch_docs=2, lr=1e-2, input_tokens=512)
# six licences of 530-2800 MiniLM tokens, and two too short to use extended positions
LICENCES = ["Apache-2.0.txt", "Artistic-2.0.txt", "BSL-1.0.txt", "EUPL-1.2.txt", "MS-PL.txt", "Python-2.0.txt",
            "CPL-1.0.txt", "MIT.txt"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("licences")
    for name in LICENCES:
        shutil.copy(CONTRACTS / name, root / name)
    return root


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, folder):
    out = tmp_path_factory.mktemp("tuned") / "minilm-pos1024"
    report = tuning.tune_positions(folder, SETTINGS, out, progress=False, log=lambda _: None)
    return out, report


@pytest.fixture(scope="module")
def base():
    return load_encoder(EncoderConfig(document_method="truncate"))


def test_saves_a_model_folder_with_metadata_and_report(tuned):
    out, report = tuned
    info = json.loads((out / tuning.TUNING_FILE).read_text())
    assert info["base"] == "all-MiniLM-L6-v2" and info["length"] == LENGTH and info["method"] == "pi"
    assert (out / "config.json").is_file() and (out / tuning.ROWS_FILE).is_file()
    assert report.steps == 3 and report.train_documents + report.heldout_documents == 6 and report.heldout_documents == 2
    for metrics in (report.before, report.after, report.truncate):
        assert set(metrics) == {"recall@1", "mrr"} and 0 <= metrics["mrr"] <= 1
    assert info["relative_change"] > 0  # the rows moved
    assert not list(out.parent.glob(".*"))  # no partial folder or checkpoint left behind


def test_tuned_rows_used_for_long_inputs_only(tuned, base):
    out, _ = tuned
    enc = load_encoder(EncoderConfig(model=str(out), document_method="pi", target_length=LENGTH))
    untuned = load_encoder(EncoderConfig(document_method="pi", target_length=LENGTH))
    rows_o = base.model.embeddings.position_embeddings.num_embeddings
    table = enc.long_model.embeddings.position_embeddings.weight
    saved = load_file(str(out / tuning.ROWS_FILE))["rows"]
    # tables are loaded, copied tensors (nothing computed): equal bits
    assert torch.equal(table[rows_o:], saved)
    assert torch.equal(table[:rows_o], base.model.embeddings.position_embeddings.weight)  # originals untouched
    assert not torch.equal(saved, untuned.long_model.embeddings.position_embeddings.weight[rows_o:])

    ids = enc.tokenize((CONTRACTS / "Apache-2.0.txt").read_text()).ids
    short = ids[:400]
    # Within the original window encode_document runs the encoder's original model itself, not the
    # long copy: the very same kernel calls on the same shapes as encode_ids, so equal bits.
    assert np.array_equal(enc.encode_document(short), enc.encode_ids([short])[0])
    # the tuned folder's original model is the base model (loaded separately: equal up to rounding)
    assert_same_vectors(enc.encode_ids([short]), base.encode_ids([short]))
    assert_same_vectors(enc.encode_queries(["patent termination"]), base.encode_queries(["patent termination"]))
    long = ids[:1000]  # long inputs: the tuned rows, so not the untuned PI vector
    tuned_vec, pi_vec = enc.encode_document(long), untuned.encode_document(long)
    assert 0.5 < float(tuned_vec @ pi_vec) < 0.99999
    assert enc.describe()["tuned_positions"]["base"] == "all-MiniLM-L6-v2"
    assert enc.describe()["tuned_positions"]["length"] == LENGTH
    assert base.describe()["tuned_positions"] is None


def test_refuses_other_base_length_or_method(tuned, tmp_path):
    out, _ = tuned
    with pytest.raises(ConfigError, match="target_length: 1024"):
        load_encoder(EncoderConfig(model=str(out), document_method="pi", target_length=2048))
    with pytest.raises(ConfigError, match="document_method: pi"):
        load_encoder(EncoderConfig(model=str(out), document_method="gp", target_length=LENGTH))
    # the same tuned files next to another model's weights (here: MiniLM with a changed position table)
    from transformers import AutoModel

    other = tmp_path / "other"
    shutil.copytree(out, other)
    model = AutoModel.from_pretrained(other)
    with torch.no_grad():
        model.embeddings.position_embeddings.weight.mul_(1.01)
    model.save_pretrained(other)
    with pytest.raises(ConfigError, match="trained on base model 'all-MiniLM-L6-v2'"):
        load_encoder(EncoderConfig(model=str(other), document_method="pi", target_length=LENGTH))


def test_resumes_from_its_checkpoint(tmp_path, monkeypatch, folder):
    out = tmp_path / "resumed"
    real_step, calls = tuning._step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(tuning, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune_positions(folder, SETTINGS, out, progress=False, log=lambda _: None)
    assert not out.exists() and (tmp_path / ".resumed.partial" / tuning.CHECKPOINT).is_file()
    monkeypatch.setattr(tuning, "_step", real_step)
    messages = []
    report = tuning.tune_positions(folder, SETTINGS, out, progress=False, log=messages.append)
    assert any("resuming from step 2 of 3" in m for m in messages)
    assert report.steps == 3 and (out / tuning.ROWS_FILE).is_file()


def test_bad_input_is_a_clear_error(tmp_path):
    (tmp_path / "a.txt").write_text("too short to need extended positions")
    with pytest.raises(InputError, match="documents longer than"):
        tuning.tune_positions(tmp_path, SETTINGS, tmp_path / "out", progress=False, log=lambda _: None)
    with pytest.raises(InputError, match="must exceed"):
        tuning.tune_positions(CONTRACTS, replace(SETTINGS, length=512), tmp_path / "out", progress=False,
                              log=lambda _: None)
    with pytest.raises(InputError, match="unknown objective"):
        tuning.tune_positions(CONTRACTS, replace(SETTINGS, objective="guess"), tmp_path / "out", progress=False,
                              log=lambda _: None)
    with pytest.raises(InputError, match="--input-tokens"):
        tuning.tune_positions(CONTRACTS, replace(SETTINGS, input_tokens=LENGTH), tmp_path / "out", progress=False,
                              log=lambda _: None)
    result = CliRunner().invoke(main, ["tune-positions", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "is not a folder" in result.output


@pytest.mark.parametrize("objective, tokens", [("retrieve", 800), ("distill", 512)])
def test_cli_runs_and_reports(tmp_path, folder, objective, tokens):
    # retrieve with inputs longer than the base window (800 content tokens at positions up to 1024)
    result = CliRunner().invoke(main, ["tune-positions", str(folder), "--length", str(LENGTH), "--steps", "1",
                                       "--batch-docs", "2", "--out", str(tmp_path / "t"), "--quiet",
                                       "--objective", objective, "--input-tokens", str(tokens)])
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "t" / tuning.TUNING_FILE).read_text())
    assert info["settings"]["objective"] == objective and info["settings"]["input_tokens"] == tokens
    assert "PI tuned" in result.output and "held-out" in result.output
    assert (tmp_path / "t" / tuning.TUNING_FILE).is_file()
