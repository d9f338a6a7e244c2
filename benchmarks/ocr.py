"""OCR at index time: the 22 licences of examples/contracts printed to PDF (running header, footer,
every third one in two columns: evaluation/printed.py) and scanned (150 dpi grayscale, no text
layer), then read back by `longrag index`.

    .venv/bin/python benchmarks/ocr.py [--rapidocr-path DIR] [--rapidocr-pages 2] [--long-scan 500]

Measures: the character error rate of the scanned copy's OCR text against the printed copy's text
layer (page by page, whitespace squashed, furniture included; Levenshtein distance / reference
length), OCR pages per second, whether the ten contract questions' top-1 search hit is the same
over the scanned copy as over the printed copy (and over the text files), and whether any page
furniture shows in a snippet of their hits or in any sentence of the stored text (what quotes are
cut from). `--rapidocr-path` measures rapidocr-onnxruntime (installed there with pip --target) on
the first pages (at the scan's own 150 dpi; kept from an earlier run when not given); `--long-scan N`
OCRs one N-page scan and reports its time and peak memory.
Writes benchmarks/results/ocr.json and the `ocr` block of docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from longrag import Pipeline
from longrag.documents import load_file
from longrag.documents.furniture import restore
from longrag.documents.loaders import ReadOptions
from longrag.documents.ocr import engine
from longrag.evaluation.contract_questions import QUESTIONS
from longrag.evaluation.printed import print_pdf, scan_pdf
from longrag.indexing import library_versions
from longrag.reasoning.sentences import split_sentences

from readme_tables import REPO, RESULTS, machine, markdown_table, replace_block, save_json, stamp

OUT = REPO / "benchmarks" / "results" / "ocr.json"
CONTRACTS = REPO / "examples" / "contracts"
FURNITURE = re.compile(r"CONFIDENTIAL|Execution Copy|Initials|Page \d")


def copies(folder: Path) -> tuple[Path, Path]:
    """printed/ and scanned/ copies of every contract (every third in two columns)."""
    printed, scanned = folder / "printed", folder / "scanned"
    printed.mkdir(parents=True)
    scanned.mkdir()
    for i, source in enumerate(sorted(CONTRACTS.glob("*.txt"))):
        pdf = print_pdf(source.read_text(), source.stem, columns=2 if i % 3 == 2 else 1)
        (printed / f"{source.stem}.pdf").write_bytes(pdf)
        (scanned / f"{source.stem}.pdf").write_bytes(scan_pdf(pdf))
    return printed, scanned


def pages_of(text: str, metadata: dict) -> list[str]:
    """Each page's text as extracted (furniture restored), whitespace squashed."""
    text = restore(text, metadata)
    starts = metadata["page_starts"] + [len(text) + 2]
    return [" ".join(text[a:b - 2].split()) for a, b in zip(starts, starts[1:])]


def error_rate(pairs, rules: bool = True) -> float:
    """Levenshtein distance over reference characters, summed over (reference, read) pairs; without
    `rules`, runs of three or more of one symbol (----, ****, ____: drawn lines and blanks to fill,
    which OCR reads as nothing or as letters) are left out of both sides first."""
    if not rules:
        pairs = [(_unruled(ref), _unruled(got)) for ref, got in pairs]
    return sum(Levenshtein.distance(ref, got) for ref, got in pairs) / max(1, sum(len(ref) for ref, _ in pairs))


def _unruled(text: str) -> str:
    return " ".join(re.sub(r"([^\w\s])\1{2,}|_{3,}", " ", text).split())


def read_scans(printed: Path, scanned: Path) -> dict:
    """OCR every scanned contract (cache off: a fresh cache folder), timed, with CER per document."""
    rows, pairs, pages, seconds = [], [], 0, 0.0
    cpu = _children_cpu()
    for pdf in sorted(scanned.glob("*.pdf")):
        began = time.perf_counter()
        read = load_file(pdf, scanned, ReadOptions("auto", False))
        took = time.perf_counter() - began
        text = load_file(printed / pdf.name, printed)
        mine = list(zip(pages_of(text.text, text.metadata), pages_of(read.text, read.metadata)))
        pairs += mine
        pages += read.metadata["pages"]
        seconds += took
        confidence = read.metadata["ocr"]["confidence"]
        rows.append({"document": pdf.stem, "pages": read.metadata["pages"], "seconds": round(took, 1),
                     "cer": round(error_rate(mine), 4), "cer_without_rules": round(error_rate(mine, rules=False), 4),
                     "mean_confidence": round(sum(confidence.values()) / len(confidence), 1),
                     "unreadable": read.metadata["ocr"]["unreadable"]})
        print(f"{pdf.stem}: {rows[-1]}", flush=True)
    return {"documents": rows, "pages": pages, "seconds": round(seconds, 1), "pages_per_second": round(pages / seconds, 3),
            "tesseract_cpu_seconds_per_page": round((_children_cpu() - cpu) / pages, 2),
            "cer": round(error_rate(pairs), 4), "cer_without_rules": round(error_rate(pairs, rules=False), 4)}


def _children_cpu() -> float:
    """CPU seconds used by this process's finished children (the Tesseract runs): a cost that does
    not depend on how busy the machine is."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rapidocr(path: str, printed: Path, scanned: Path, n_pages: int) -> dict:
    """rapidocr-onnxruntime with its bundled models on the first pages of the first contracts."""
    sys.path.append(path)
    import numpy as np
    import pypdfium2
    from rapidocr_onnxruntime import RapidOCR

    reader, pairs, seconds = RapidOCR(), [], 0.0
    for pdf in sorted(scanned.glob("*.pdf")):
        reference = load_file(printed / pdf.name, printed)
        document = pypdfium2.PdfDocument(pdf.read_bytes())
        for number in range(min(len(document), n_pages - len(pairs))):
            image = document[number].render(scale=150 / 72, grayscale=True).to_pil().convert("RGB")  # the scan as made
            began = time.perf_counter()
            result, _ = reader(np.asarray(image))
            seconds += time.perf_counter() - began
            read = " ".join(" ".join(text for _, text, _ in result or []).split())
            pairs.append((pages_of(reference.text, reference.metadata)[number], read))
        if len(pairs) >= n_pages:
            break
    return {"version": version("rapidocr-onnxruntime"), "measured_utc": datetime.now(timezone.utc).isoformat(timespec="minutes"),
            "pages": len(pairs), "seconds_per_page": round(seconds / len(pairs), 2),
            "cer": round(error_rate(pairs), 4), "cer_without_rules": round(error_rate(pairs, rules=False), 4)}


def parity(folders: dict[str, Path], work: Path) -> dict:
    """Top-1 hit of the ten contract questions over each copy; furniture in snippets or sentences."""
    tops, sections, leaks = {}, {}, []
    for name, folder in folders.items():
        pipe = Pipeline.from_config(None)
        began = time.perf_counter()
        pipe.index([folder], index_dir=work / f"index-{name}", progress=False)
        print(f"indexed the {name} copy in {time.perf_counter() - began:.0f} s", flush=True)
        pipe = Pipeline.load(work / f"index-{name}")
        tops[name], sections[name] = [], []
        for question in QUESTIONS:
            hits = pipe.search(question, k=10)
            tops[name].append(Path(hits[0].doc_id).stem)
            sections[name].append(" › ".join(hits[0].section or ()))
            leaks += [f"{name}: {h.doc_id} snippet" for h in hits if FURNITURE.search(h.snippet)]
        for doc_id in pipe.store.documents():
            text = pipe.store.document_row(doc_id)["text"]
            leaks += [f"{name}: {doc_id} sentence" for a, b in split_sentences(text) if FURNITURE.search(text[a:b])]
    expected = [Path(doc).stem for doc, _ in QUESTIONS.values()]
    return {"questions": list(QUESTIONS), "expected": expected, "top1": tops, "top1_section": sections,
            "same_top1_scanned_vs_printed": sum(a == b for a, b in zip(tops["scanned"], tops["printed"])),
            "right_top1": {name: sum(a == b for a, b in zip(top, expected)) for name, top in tops.items()},
            "furniture_leaks": leaks}


# measured in a fresh process, so that the peak is the reading's own (not this benchmark's leftovers)
_READ_ONE = """
import json, sys, threading, time
import psutil
from pathlib import Path
from longrag.documents import load_file
from longrag.documents.loaders import ReadOptions
scan = Path(sys.argv[1])
process, peak, done = psutil.Process(), [0, 0], threading.Event()
def watch():
    while not done.wait(0.2):
        own = process.memory_info().rss
        peak[0], peak[1] = max(peak[0], own), max(peak[1], own + sum(c.memory_info().rss for c in process.children()))
threading.Thread(target=watch, daemon=True).start()
before = process.memory_info().rss
began = time.perf_counter()
read = load_file(scan, scan.parent, ReadOptions("auto", True, scan.name))
seconds = time.perf_counter() - began
done.set()
print(json.dumps({"pages": read.metadata["pages"], "seconds": round(seconds, 1), "rss_before_mb": before >> 20,
                  "peak_own_mb": peak[0] >> 20, "peak_rss_mb": peak[1] >> 20,
                  "unreadable": read.metadata["ocr"]["unreadable"]}))
"""


def long_scan(pages: int, work: Path) -> dict:
    """One scan of `pages` pages (the contracts printed one after another, repeated) OCR'd as
    `longrag index` does it, in a fresh process: seconds, pages/s and peak resident memory (the
    process alone, and with its Tesseract processes). The per-page progress bar goes to stderr."""
    text = "\n\n".join(p.read_text() for p in sorted(CONTRACTS.glob("*.txt")))
    folder = work / "long"
    folder.mkdir()
    scan = folder / f"scan-{pages}.pdf"
    printed = print_pdf("Long scan\n" + (text + "\n\n") * (1 + pages // 60), "long", pages=pages)
    scan.write_bytes(scan_pdf(printed))
    del printed
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _READ_ONE, str(scan)], env=env, check=True, stdout=subprocess.PIPE, text=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {**measured, "file_mb": round(scan.stat().st_size / 2**20, 1),
            "pages_per_second": round(pages / measured["seconds"], 3), "stamp": stamp({"tesseract": engine().split()[-1]})}


def report(results: dict) -> None:
    scans = results["tesseract"]
    rows = [["Tesseract (`index.ocr: auto`)", results["tesseract_version"], f"{100 * scans['cer']:.2f}%",
             f"{100 * scans['cer_without_rules']:.2f}%", f"{scans['pages_per_second']:.2f}",
             f"{scans['tesseract_cpu_seconds_per_page']:.1f}", str(scans["pages"])]]
    if results.get("rapidocr"):
        r = results["rapidocr"]
        unruled = f"{100 * r['cer_without_rules']:.1f}%" if "cer_without_rules" in r else "–"
        rows.append(["rapidocr-onnxruntime (bundled PP-OCRv4 models)", r["version"], f"{100 * r['cer']:.1f}%", unruled,
                     f"{1 / r['seconds_per_page']:.4f}", "(in process)", str(r["pages"])])
    p = results["parity"]
    body = [markdown_table(["engine", "version", "character error rate", "without drawn rules (----, ****, ____)",
                            "pages/s (wall, 2 cores)", "CPU s/page", "pages"], rows), "",
            f"Top-1 search hit of the ten contract questions: scanned copy = printed copy in "
            f"**{p['same_top1_scanned_vs_printed']} of 10**; right document at top-1: "
            + ", ".join(f"{k} {v}/10" for k, v in p["right_top1"].items())
            + f". Furniture in a snippet or a stored sentence: **{len(p['furniture_leaks'])}**. Top-1 hits with a "
            "section: " + ", ".join(f"{k} {sum(bool(s) for s in v)}/10" for k, v in p.get("top1_section", {}).items())
            + "."]
    if results.get("long_scan"):
        ls = results["long_scan"]
        body.append(f"\nA {ls['pages']}-page scan ({ls['file_mb']} MB): {ls['seconds']:.0f} s, "
                    f"{ls['pages_per_second']:.2f} pages/s, peak memory {ls['peak_rss_mb']} MB with its Tesseract processes"
                    + (f", {ls['peak_own_mb']} MB the reading process alone" if "peak_own_mb" in ls else "")
                    + f" ({ls['rss_before_mb']} MB before). {ls.get('stamp', '')}")
    body.append("\n" + results["stamp"] + " Measured while the machine was shared.")
    replace_block("ocr", "\n".join(body), RESULTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rapidocr-path", help="folder rapidocr-onnxruntime was installed into (pip --target)")
    parser.add_argument("--rapidocr-pages", type=int, default=2)
    parser.add_argument("--long-scan", type=int, default=0, help="also OCR one scan of this many pages")
    parser.add_argument("--only-long-scan", action="store_true",
                        help="run the --long-scan alone; keep the other saved results")
    parser.add_argument("--report", action="store_true", help="rewrite the docs/results.md block from the saved results")
    args = parser.parse_args()
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.report:
        report(previous)
        return
    work = Path(tempfile.mkdtemp(prefix="longrag-ocr-"))
    os.environ["LONGRAG_CACHE"] = str(work / "cache")  # every page OCR'd here, none from an earlier run
    try:
        if args.only_long_scan:
            results = {**previous, "long_scan": long_scan(args.long_scan, work)}
            save_json(OUT, results)
            report(results)
            return
        printed, scanned = copies(work)
        versions = {**{k: v for k, v in library_versions().items() if k in ("longrag", "python")},
                    "pypdfium2": version("pypdfium2"), "tesseract": engine().split()[-1]}
        results = {"machine": machine(), "tesseract_version": engine(), "versions": versions, "stamp": stamp(versions),
                   "tesseract": read_scans(printed, scanned)}
        save_json(OUT, results)
        if args.rapidocr_path:
            results["rapidocr"] = rapidocr(args.rapidocr_path, printed, scanned, args.rapidocr_pages)
            save_json(OUT, results)
        elif previous.get("rapidocr"):  # slow: kept from the run that measured it (its date is in the entry)
            results["rapidocr"] = previous["rapidocr"]
        results["parity"] = parity({"text": CONTRACTS, "printed": printed, "scanned": scanned}, work)
        save_json(OUT, results)
        if args.long_scan:
            results["long_scan"] = long_scan(args.long_scan, work)
            save_json(OUT, results)
        report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
