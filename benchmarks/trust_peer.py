"""The trust benchmark's questions through the pipeline a LangChain user would build, with the
packaged generator `ask` uses: the peer row beside benchmarks/trust.py's table.

Pipeline as LangChain's RAG tutorial builds it: RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200), a FAISS vector store of HuggingFaceEmbeddings on the packaged encoder
(longrag/evaluation/peers.py, shared with `longrag compare`), a retriever (k=4) and the tutorial's
stuff-documents prompt, composed with LCEL. The LLM is longrag's configured generator
(qwen2.5-0.5b through llama.cpp by default) wrapped as a runnable, with generator.max_new_tokens.

Graded with benchmarks/trust.py's own grader: every reply counts as shown (the peer never
withholds) unless it says it does not know (`says_unknown`: then "not found"); the retrieved
chunks are its evidence (evidence_hit by their character spans); it prints no quotes (n/a).
One FAISS store per corpus is cached under runs/trust_peer/ (rebuilt when the texts change).

    .venv/bin/python benchmarks/trust_peer.py --limit 3      # a quick check
    .venv/bin/python benchmarks/trust_peer.py                # test half: rows, table, docs/results.md
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from itertools import zip_longest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust import OUT as ASK_OUT, ROOT, corpus_texts, gold_span, grade, load_questions, summary  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "trust_peer.json"
STORES = ROOT / "runs" / "trust_peer"
K = 4
SYSTEM = ("Use the following pieces of retrieved context to answer the question. If you don't know the answer, "
          "say that you don't know. Use three sentences maximum and keep the answer concise.\n\n{context}")
LANGCHAIN = ("langchain-core", "langchain-community", "langchain-text-splitters", "langchain-huggingface")

# "I don't know", "the context does not mention …", "not specified": the peer's way of saying not found
# (not "does not provide": that is an answer, "No, it does not provide a warranty")
_UNKNOWN = re.compile(r"\b(?:do|does|did)(?: not|n[’']t) (?:know|say|mention|specify|state)\b"
                      r"|(?:\bnot|n[’']t) (?:mentioned|stated|specified)\b|\bno (?:information|mention)\b"
                      r"|\bcannot be determined\b", re.I)


def says_unknown(answer: str) -> bool:
    """The reply says the context does not answer (counted as not found, never as a shown answer)."""
    return bool(_UNKNOWN.search(answer or ""))


# ---- the peer pipeline --------------------------------------------------------------------------

def open_store(corpus: str, texts: dict[str, str], embeddings, model: str):
    """The corpus's FAISS store, from the cache when it was built from these very texts."""
    import warnings

    from longrag.evaluation.peers import langchain_store

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community's sunset notice
        from langchain_community.vectorstores import FAISS

    digest = hashlib.sha256(json.dumps([model, 1000, 200, sorted(texts.items())]).encode()).hexdigest()
    target, stamp_file = STORES / corpus, STORES / corpus / "built-from.sha256"
    if stamp_file.exists() and stamp_file.read_text() == digest:
        # our own pickle, written below: safe to load
        return FAISS.load_local(str(target), embeddings, allow_dangerous_deserialization=True)
    print(f"building the FAISS store of {corpus} ({len(texts)} documents, {sum(map(len, texts.values())):,} "
          "characters)", flush=True)
    started = time.perf_counter()
    embeddings.show_progress = True  # a bar over the chunks' batches, not over each question
    try:
        store = langchain_store(texts, embeddings)
    finally:
        embeddings.show_progress = False
    store.save_local(str(target))
    stamp_file.write_text(digest)
    print(f"  {store.index.ntotal} chunks in {time.perf_counter() - started:.0f} s", flush=True)
    return store


def rag_chain(store, generator, max_new_tokens: int):
    """retriever | stuff-documents prompt | generator, returning the retrieved chunks beside the answer."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

    roles = {"system": "system", "human": "user", "ai": "assistant"}
    llm = RunnableLambda(lambda prompt: generator.chat(
        [{"role": roles[m.type], "content": m.content} for m in prompt.to_messages()], max_new_tokens=max_new_tokens))
    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "{question}")])
    answer = (RunnablePassthrough.assign(context=lambda x: "\n\n".join(d.page_content for d in x["context"]))
              | prompt | llm | StrOutputParser())
    retriever = store.as_retriever(search_kwargs={"k": K})
    return RunnableParallel({"context": retriever, "question": RunnablePassthrough()}).assign(answer=answer)


def run(args) -> dict:
    from importlib.metadata import version

    from longrag.config import load_config
    from longrag.evaluation.peers import langchain_embeddings
    from longrag.indexing import library_versions
    from longrag.pipeline import _load_generator
    from readme_tables import save_json, stamp

    results = json.loads(OUT.read_text()) if OUT.exists() and not args.fresh else {"rows": {}, "stamps": {}}
    rows = results["rows"]
    config = load_config(None)
    todo = round_robin([q for q in load_questions(args.split)[: args.limit] if (args.redo or q["id"] not in rows)
                        and (not args.ids or q["id"] in args.ids.split(","))])
    if todo:
        generator = _load_generator(config)
        versions = library_versions()
        for name in LANGCHAIN:
            versions[name] = version(name)
        results["settings"] = {"splitter": "RecursiveCharacterTextSplitter(1000, 200)", "k": K,
                               "embeddings": config.encoder.model, "max_new_tokens": config.generator.max_new_tokens,
                               "generator": f"{config.generator.model} ({generator.backend})", "prompt": SYSTEM}
        results["stamps"][args.split] = stamp(versions)
        embeddings = langchain_embeddings(config.encoder.model)
        chains, texts = {}, {}
        for q in todo:
            corpus = q["corpus"]
            if corpus not in chains:
                texts[corpus] = corpus_texts(corpus)
                store = open_store(corpus, texts[corpus], embeddings, config.encoder.model)
                chains[corpus] = rag_chain(store, generator, config.generator.max_new_tokens)
            started, cpu = time.perf_counter(), time.process_time()
            out = chains[corpus].invoke(q["question"])
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            row = {"question": q["question"], "split": q["split"], "corpus": corpus, "answer": out["answer"],
                   "found": not says_unknown(out["answer"]), "withheld": None, "quotes": [],
                   "evidence": [[d.metadata["doc_id"], d.metadata["start_index"],
                                 d.metadata["start_index"] + len(d.page_content)] for d in out["context"]],
                   "gold_span": gold_span(q, texts[corpus]), "seconds": round(seconds, 2),
                   "cpu_seconds": round(cpu, 2)}  # all of this process's threads: less moved by a shared machine
            row["grade"] = g = grade(q, row)
            rows[q["id"]] = row
            print(f"{q['id']} {q['split']} {'RIGHT' if g['right'] else 'wrong'}{' SHOWN-WRONG' if g['wrong_shown'] else ''}"
                  f" evidence={'y' if g.get('evidence_hit') else 'n'} {seconds:.1f}s {q['question'][:70]}\n"
                  f"   -> {out['answer'][:150]!r}", flush=True)
            save_json(OUT, results)
    return results


def round_robin(questions: list[dict]) -> list[dict]:
    """One question of each corpus in turn, so a run stopped early has covered every corpus."""
    by_corpus: dict[str, list[dict]] = {}
    for q in questions:
        by_corpus.setdefault(q["corpus"], []).append(q)
    return [q for group in zip_longest(*by_corpus.values()) for q in group if q]


# ---- report ------------------------------------------------------------------------------------

def ask_runs(path: Path) -> dict:
    return json.loads(path.read_text())["runs"] if path.exists() else {}


def table(results: dict, split: str, ask_run: str, ask_file: Path = ASK_OUT) -> str:
    """The peer's row and `ask`'s (run `ask_run` of trust.py's results) over the questions the peer answered."""
    questions = [q for q in load_questions(split) if q["id"] in results["rows"]]
    lines = ["| pipeline | questions | quote holds the gold clause | evidence holds it | answerable shown | wrong shown "
             "| right of shown (n) | facts shown (right of them) | answerable → not found "
             "| unanswerable not shown | median s (p90) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    peer = "LangChain tutorial RAG (k=4), same generator"
    runs = [(peer, results["rows"], False, questions)]
    ask = ask_runs(ask_file).get(ask_run)
    if ask:
        both = [q for q in questions if q["id"] in ask["rows"]]
        if len(both) < len(questions):  # the peer again on just the questions the ask run has
            runs.append((f"{peer}, the ask row's questions", results["rows"], False, both))
        runs.append((f"`ask`, {ask_file.name} run `{ask_run}`", ask["rows"], True, both))
    for name, rows, quotes, asked in runs:
        s = {k: "—" if v is None else v for k, v in summary(asked, rows).items()}
        if s["questions"]:
            lines.append(f"| {name} | {s['questions']} | {_pct(s['quote_hit']) if quotes else 'n/a'} | "
                         f"{_pct(s['evidence_hit'])} | {_pct(s['answerable_shown'])} | {_pct(s['wrong_shown'])} | "
                         f"{_pct(s['right_of_shown'])} ({s['shown']}) | {_pct(s['facts_shown'])} "
                         f"({_pct(s['facts_right_of_shown'])}) | {_pct(s['answerable_not_found'])} | "
                         f"{_pct(s['unanswerable_not_shown'])} | {s['median_seconds']} ({s['p90_seconds']}) |")
    return "\n".join(lines)


def _pct(value) -> str:
    return f"{value}%" if isinstance(value, (int, float)) else str(value)


def per_corpus(results: dict, split: str) -> str:
    questions = load_questions(split)
    out = []
    for corpus in sorted({q["corpus"] for q in questions}):
        s = summary([q for q in questions if q["corpus"] == corpus], results["rows"])
        if s["questions"]:
            out.append(f"{corpus:10} {s['questions']:3} questions: evidence holds it {s['evidence_hit']}%, answerable shown "
                       f"{s['answerable_shown']}%, wrong shown {s['wrong_shown']}%, right of shown {s['right_of_shown']}% "
                       f"({s['shown']}), median {s['median_seconds']} s")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test", choices=["dev", "test", "all"])
    parser.add_argument("--limit", type=int, help="only the first N questions of the split (a quick check)")
    parser.add_argument("--redo", action="store_true", help="ask again questions already answered")
    parser.add_argument("--ids", help="only these questions, comma-separated (with --redo: ask them again)")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--ask-run", default="default", help="the run of trust.py's results shown beside the peer")
    parser.add_argument("--ask-file", type=Path, default=ASK_OUT, help="trust.py's results (its --out)")
    parser.add_argument("--table-only", action="store_true", help="report the saved rows, run nothing")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if args.table_only else run(args)
    body = table(results, args.split, args.ask_run, args.ask_file)
    print(body + "\n\n" + per_corpus(results, args.split))
    if args.split == "test" and not (args.limit or args.ids):  # the reported numbers
        from readme_tables import RESULTS, replace_block

        ask = ask_runs(args.ask_file).get(args.ask_run, {})
        notes = [f"Peer: {results['stamps'].get('test', '')}"]
        if ask.get("stamp"):
            notes.append(f"`ask` row: {ask['stamp']}")
        replace_block("trust-peer", body + "\n\n" + "\n".join(notes), RESULTS)


if __name__ == "__main__":
    main()
