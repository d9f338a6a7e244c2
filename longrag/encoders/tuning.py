"""Position tuning (LongEmbed's recipe behind E5-Base-4k) on the user's own documents.

Only the extended position rows are trained; every other weight stays frozen. The extended table
starts as PI (linear interpolation of the original rows) and keeps the original rows for inputs of
≤ L_o tokens (`extend_positions(keep_short=True)`), so short inputs behave exactly as before.

Training inputs are shorter than L_t (so cheap) but carry PoSE-style position ids: a sample is
`pieces` chunks cut from one L_t-token window of a document (`input_tokens` content tokens in all),
each chunk given the positions it really has in that window (plus a random shift, so the whole
extended range is covered even by documents shorter than L_t). Two self-supervised objectives:

- `retrieve` (default): passages of the sample, embedded by the *original* model as a short query
  would be, must retrieve the sample's vector among the other documents in the batch (InfoNCE,
  passage → document). This is the task a long-document vector is used for.
- `distill`: the sample's vector must match the original model's vector of the same tokens read as
  one ordinary ≤ L_o input (1 − cosine) and pick it out among the batch (InfoNCE). Kept for
  comparison (docs/results.md, "Position tuning").

The result is saved as a normal model folder (the base model's files, unchanged) plus
`longrag_positions.safetensors` (the tuned rows) and `longrag_tuning.json` (base model, its
fingerprint, length, held-out report). `encoder.model: <that folder>` with `document_method: pi`
and `target_length: <length>` uses the tuned rows (`tuned`); a table tuned on another base model is
refused. The held-out report is computed in `heldout`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..config import EncoderConfig
from ..documents.loaders import UnreadableFile, discover, load_file
from ..errors import InputError
from ..files import atomic_directory, cache_dir
from .transformer import load_encoder
from .heldout import format_metrics, heldout_metrics, heldout_queries
from .positions import extend_positions
from .tuned import FORMAT, ROWS_FILE, TUNING_FILE, model_fingerprint, tuned_rows, tuning_info

CHECKPOINT = "checkpoint.pt"
OBJECTIVES = ("retrieve", "distill")


@dataclass(frozen=True)
class TuneSettings:
    """Everything that changes the tuned table (a checkpoint is resumed only when these match)."""

    base: str = "all-MiniLM-L6-v2"
    length: int = 8192  # target length L_t, special tokens included
    steps: int = 200
    batch_docs: int = 8  # documents per step (each one training input)
    pieces: int = 4  # chunks per training input
    input_tokens: int = 2048  # content tokens per training input (the pieces together)
    objective: str = "retrieve"  # "retrieve" (passages → document) or "distill" (see module docstring)
    passages: int = 4  # per document and step, for `retrieve`
    passage_tokens: int = 64
    lr: float = 1e-3
    tau: float = 0.05  # InfoNCE temperature
    holdout: float = 0.2  # fraction of documents held back for the report
    max_holdout: int = 40
    seed: int = 0


@dataclass
class TuneReport:
    """Held-out gain: does a document's vector retrieve its own passages (embedded by the original model)?"""

    out: str
    train_documents: int
    heldout_documents: int
    heldout_queries: int
    steps: int
    seconds: float
    before: dict = field(default_factory=dict)  # metric → value, untuned PI
    after: dict = field(default_factory=dict)  # tuned
    truncate: dict = field(default_factory=dict)  # the original model's first window, for scale
    losses: list = field(default_factory=list)  # mean loss per 10% of training


# -- data -----------------------------------------------------------------------------------------
def _load_documents(folder: Path, encoder, min_tokens: int) -> tuple[list[tuple[str, np.ndarray]], int]:
    files, _ = discover([folder])
    docs, short = [], 0
    for path, root in files:
        try:
            document = load_file(path, root)
        except UnreadableFile:
            continue
        ids = encoder.tokenize(document.text).ids
        if len(ids) > min_tokens:
            docs.append((document.doc_id, ids))
        else:
            short += 1
    return docs, short


def _split(docs: list, settings: TuneSettings) -> tuple[list, list]:
    """Deterministic held-out split by document id (the same folder gives the same split)."""
    keyed = sorted(docs, key=lambda d: hashlib.sha256(d[0].encode()).hexdigest())
    n_held = min(settings.max_holdout, max(2, round(len(docs) * settings.holdout)))
    return keyed[n_held:], keyed[:n_held]


class _Sampler:
    """Builds PoSE training inputs: chunks of one L_t window placed at their real, shifted positions."""

    def __init__(self, encoder, length: int, pieces: int, rng: random.Random, budget: int):
        self.encoder, self.rng, self.pieces = encoder, rng, pieces
        self.prefix = list(encoder.document_prefix_ids)
        self.head, self.tail = list(encoder.head_ids), list(encoder.tail_ids)
        self.budget = budget  # content tokens per training input
        self.span = length - len(self.head) - len(self.tail) - len(self.prefix)  # content positions available
        self.first = len(self.head) + len(self.prefix)  # position of the first content token

    def sample(self, ids: np.ndarray) -> tuple[list[int], list[int], list[np.ndarray]]:
        rng = self.rng
        window = min(len(ids), self.span)
        start = rng.randint(0, len(ids) - window)
        piece = max(8, self.budget // self.pieces)
        count = max(1, min(self.pieces, window // piece))
        # non-overlapping chunk starts within the window, in order
        free = window - count * piece
        cuts = sorted(rng.randint(0, free) for _ in range(count))
        starts = [cuts[i] + i * piece for i in range(count)]
        shift = rng.randint(0, self.span - window)  # PoSE: move the window anywhere in the extended range
        chunks = [ids[start + a: start + a + piece] for a in starts]
        content = np.concatenate(chunks)
        positions = np.concatenate([np.arange(a, a + piece) for a in starts]) + shift + self.first
        tokens = self.head + self.prefix + [int(t) for t in content] + self.tail
        pos = list(range(self.first)) + positions.tolist()
        pos += list(range(pos[-1] + 1, pos[-1] + 1 + len(self.tail)))
        return tokens, pos, chunks


# -- training -------------------------------------------------------------------------------------
def tune_positions(folder: str | Path, settings: TuneSettings = TuneSettings(), out: str | Path | None = None,
                   progress: bool = True, log: Callable[[str], None] = print) -> TuneReport:
    """Tune the PI-extended position rows of `settings.base` on the documents under `folder`.

    Writes a model folder to `out` (default: cache_dir()/encoders/<base>-pos<length>) atomically and
    returns the held-out report. A checkpoint next to `out` is resumed when the settings match.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of documents")
    if settings.steps < 1 or settings.batch_docs < 2 or settings.pieces < 1:
        raise InputError("tune-positions needs steps ≥ 1, at least 2 documents per batch and ≥ 1 piece")
    if settings.objective not in OBJECTIVES:
        raise InputError(f"unknown objective {settings.objective!r}; choose one of {', '.join(OBJECTIVES)}")
    encoder = load_encoder(EncoderConfig(model=settings.base, document_method="truncate"))
    if settings.length <= encoder.max_positions:
        raise InputError(f"--length {settings.length} must exceed the base model's {encoder.max_positions} positions")
    if not 8 * settings.pieces <= settings.input_tokens < settings.length:
        raise InputError(f"--input-tokens must lie between {8 * settings.pieces} and --length {settings.length} "
                         f"(got {settings.input_tokens})")
    if tuning_info(encoder.path) is not None:
        raise InputError(f"{settings.base} is already a tuned folder; pass its base model as --base")
    out = Path(out) if out else cache_dir() / "encoders" / f"{Path(settings.base).name}-pos{settings.length}"
    started = time.perf_counter()

    docs, short = _load_documents(folder, encoder, min_tokens=encoder.window)
    if len(docs) < settings.batch_docs + 2:
        raise InputError(f"{folder} has {len(docs)} documents longer than {encoder.window} tokens "
                         f"({short} shorter ones do not use extended positions); need at least "
                         f"{settings.batch_docs + 2} (--batch-docs plus 2 held out)")
    train, held = _split(docs, settings)
    if len(train) < settings.batch_docs:
        raise InputError(f"only {len(train)} training documents after holding out {len(held)}; "
                         f"lower --batch-docs (now {settings.batch_docs})")
    log(f"tuning positions of {settings.base} to {settings.length} tokens on {len(train)} documents "
        f"({len(held)} held out, {short} too short to matter)")

    torch.manual_seed(settings.seed)
    long_model = extend_positions(encoder.model, "pi", settings.length, encoder.max_positions, keep_short=True)
    for p in long_model.parameters():
        p.requires_grad_(False)
    table = long_model.embeddings.position_embeddings.weight
    rows_o = encoder.model.embeddings.position_embeddings.num_embeddings
    table.requires_grad_(True)
    keep = torch.zeros(table.shape[0], 1)
    keep[rows_o:] = 1.0
    table.register_hook(lambda grad: grad * keep)  # the original rows never move: short inputs stay exact
    optimizer = torch.optim.Adam([table], lr=settings.lr)  # Adam: zero grads → zero updates on kept rows
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(s, settings.steps) / settings.steps)))
    initial = table.detach()[rows_o:].clone()

    work = out.parent / f".{out.name}.partial"
    work.mkdir(parents=True, exist_ok=True)
    key = {**asdict(settings), "folder": str(folder.resolve()), "documents": sorted(d for d, _ in train),
           "format": FORMAT}
    step, losses, before, truncate = 0, [], None, None
    ckpt_path = work / CHECKPOINT
    state = _load_checkpoint(ckpt_path, log)
    if state is not None:
        if state["key"] == key:
            with torch.no_grad():
                table[rows_o:] = state["rows"]
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            step, losses, before, truncate = state["step"], state["losses"], state["before"], state["truncate"]
            log(f"resuming from step {step} of {settings.steps} ({ckpt_path})")
        else:
            log(f"ignoring checkpoint {ckpt_path}: it was made with other settings or documents")

    heldout = heldout_queries(encoder, held, settings.length, settings.seed)
    if before is None:
        before = heldout_metrics(encoder, long_model, held, heldout, settings.length)
        truncate = heldout_metrics(encoder, None, held, heldout, settings.length)
        log(f"held-out before tuning: {format_metrics(before)} (truncate: {format_metrics(truncate)})")

    rng = random.Random(f"{settings.seed}-{step}")
    budget = settings.input_tokens if settings.objective == "retrieve" else min(settings.input_tokens,
                                                                               encoder.segment_window)
    sampler = _Sampler(encoder, settings.length, settings.pieces, rng, budget)
    bar = tqdm(total=settings.steps, initial=step, desc="tune-positions", unit="step", disable=not progress)
    window_losses = []
    try:
        while step < settings.steps:
            batch = rng.sample(train, settings.batch_docs)
            loss = _step(encoder, long_model, sampler, batch, settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            window_losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{window_losses[-1]:.3f}")
            if step % max(1, settings.steps // 10) == 0 or step == settings.steps:
                losses.append(round(float(np.mean(window_losses)), 4))
                window_losses = []
                _save_checkpoint(ckpt_path, key, table.detach()[rows_o:], optimizer, schedule, step, losses,
                                 before, truncate)
    finally:
        bar.close()

    after = heldout_metrics(encoder, long_model, held, heldout, settings.length)
    log(f"held-out after tuning:  {format_metrics(after)}")
    moved = float((table.detach()[rows_o:] - initial).norm() / initial.norm())
    report = TuneReport(out=str(out), train_documents=len(train), heldout_documents=len(held),
                        heldout_queries=len(heldout[0]), steps=step,
                        seconds=round(time.perf_counter() - started, 1), before=before, after=after,
                        truncate=truncate, losses=losses)
    _save_model(encoder, table.detach()[rows_o:].clone(), settings, report, out, moved)
    shutil.rmtree(work, ignore_errors=True)
    return report


def _step(encoder, long_model, sampler: _Sampler, batch, settings: TuneSettings) -> torch.Tensor:
    """Loss of one batch of PoSE inputs, one per document (see the module docstring for the objectives)."""
    inputs, positions, chunks = [], [], []
    for _, ids in batch:
        tokens, pos, pieces = sampler.sample(ids)
        inputs.append(tokens)
        positions.append(pos)
        chunks.append(pieces)
    student = _student_vectors(encoder, long_model, inputs, positions)
    if settings.objective == "retrieve":
        passages, owner = _passages(chunks, settings, sampler.rng)
        queries = torch.from_numpy(encoder.encode_ids(passages))  # original model, original positions (no grad)
        return torch.nn.functional.cross_entropy(queries @ student.T / settings.tau, torch.as_tensor(owner))
    teacher = torch.from_numpy(encoder.encode_ids([np.concatenate(p) for p in chunks]))  # same tokens, ≤ L_o
    similarity = student @ teacher.T
    # distillation (1 − cos to the original model's view of the same text) never saturates; InfoNCE
    # against the other documents keeps the vectors apart
    infonce = torch.nn.functional.cross_entropy(similarity / settings.tau, torch.arange(len(batch)))
    return (1 - torch.diagonal(similarity)).mean() + infonce


def _student_vectors(encoder, long_model, inputs, positions) -> torch.Tensor:
    """Mean-pooled, normalised vectors of the PoSE inputs through the extended model (with grad)."""
    width = max(len(t) for t in inputs)
    pad = encoder.tokenizer.pad_token_id or 0
    ids = torch.full((len(inputs), width), pad, dtype=torch.long)
    pos_ids = torch.zeros((len(inputs), width), dtype=torch.long)
    mask = torch.zeros((len(inputs), width), dtype=torch.long)
    rows_o = encoder.model.embeddings.position_embeddings.num_embeddings  # extended rows start here
    for r, (tokens, pos) in enumerate(zip(inputs, positions)):
        ids[r, : len(tokens)] = torch.tensor(tokens)
        pos_ids[r, : len(pos)] = torch.tensor(pos) + rows_o
        mask[r, : len(tokens)] = 1
    kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": pos_ids}
    if "token_type_ids" in encoder.tokenizer.model_input_names:
        kwargs["token_type_ids"] = torch.zeros_like(ids)
    with encoder.autocast():
        states = long_model(**kwargs).last_hidden_state.float()
    m = mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)


def _passages(chunks: list[list[np.ndarray]], settings: TuneSettings, rng: random.Random):
    """`settings.passages` random spans of `passage_tokens` per document, from the text its input holds."""
    passages, owner = [], []
    for row, pieces in enumerate(chunks):
        for _ in range(settings.passages):
            piece = pieces[rng.randrange(len(pieces))]
            size = min(settings.passage_tokens, len(piece))
            start = rng.randint(0, len(piece) - size)
            passages.append(piece[start: start + size])
            owner.append(row)
    return passages, owner


def _load_checkpoint(path: Path, log) -> dict | None:
    """The resume state, read as data only (weights_only: a checkpoint file cannot run code)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        log(f"ignoring checkpoint {path}: it cannot be read as plain data ({type(exc).__name__})")
        return None


def _save_checkpoint(path: Path, key, rows, optimizer, schedule, step, losses, before, truncate) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "rows": rows.clone(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "step": step, "losses": losses, "before": before,
                "truncate": truncate}, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint


# -- output ---------------------------------------------------------------------------------------
def _save_model(encoder, rows: torch.Tensor, settings: TuneSettings, report: TuneReport, out: Path,
                moved: float) -> None:
    """Base folder files + tuned rows + metadata, written as one folder (`atomic_directory`)."""
    with atomic_directory(out) as tmp:
        shutil.copytree(encoder.path, tmp, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("longrag_source.json", TUNING_FILE, ROWS_FILE))
        tmp.chmod(0o755)  # copytree gave it the base folder's mode, which may be read-only
        save_file({"rows": rows.contiguous()}, str(tmp / ROWS_FILE))
        info = {"format": FORMAT, "base": settings.base, "base_path": str(encoder.path),
                "base_fingerprint": model_fingerprint(encoder.model), "method": "pi",
                "length": settings.length, "original_positions": encoder.max_positions,
                "settings": asdict(settings), "relative_change": round(moved, 4), "report": asdict(report),
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (tmp / TUNING_FILE).write_text(json.dumps(info, indent=2))
        if out.exists() and tuning_info(out) is None and any(out.iterdir()):
            raise InputError(f"{out} exists and is not a tuned model folder; choose another --out")


__all__ = ["TuneSettings", "TuneReport", "tune_positions", "tuned_rows", "tuning_info", "model_fingerprint",
           "heldout_metrics"]
