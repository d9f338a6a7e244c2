"""The longrag retriever inside a LangChain LCEL chain (needs the extra: pip install 'longrag[langchain]').

    .venv/bin/python examples/langchain_lcel.py [FOLDER] [--index DIR]

    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()

The "llm" here is a stand-in RunnableLambda, NOT a language model: it reports which cited sources
reached the prompt. longrag's real generator lands separately; any LangChain chat model or LLM
(ChatOpenAI, ChatOllama, HuggingFacePipeline, ...) drops into the same place unchanged.
"""
from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from longrag import Pipeline
from longrag.integrations.langchain import LongragRetriever

HERE = Path(__file__).resolve().parent
QUESTION = "What happens to my patent licence if I sue a contributor?"

prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer from the numbered passages only and cite them as [n]. "
               "If they do not answer the question, say so.\n\n{context}"),
    ("human", "{question}"),
])


def format_docs(docs: list[Document]) -> str:
    """Numbered passages, each headed by its citation doc_id:start-end."""
    return "\n\n".join(f"[{i}] {d.metadata['doc_id']}:{d.metadata['start']}-{d.metadata['end']}\n{d.page_content}"
                       for i, d in enumerate(docs, 1))


def stand_in_llm(prompt_value: PromptValue) -> str:
    """Not a language model: says what it received. Replace with a real model."""
    text = prompt_value.to_string()
    sources = re.findall(r"^\[(\d+)\] (\S+)$", text, flags=re.M)
    return (f"(stand-in LLM, no generation) received a {len(text):,}-character prompt citing "
            + ", ".join(f"[{n}] {cite}" for n, cite in sources))


def main() -> None:
    """Index FOLDER (default examples/contracts), build the chain, ask QUESTION."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(HERE / "contracts"))
    parser.add_argument("--index", help="index directory to keep and reuse (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="longrag-") as tmp:
        index_dir = Path(args.index) if args.index else Path(tmp) / "index"
        Pipeline.from_config(None).index([args.folder], index_dir=index_dir, progress=False)
        retriever = LongragRetriever(pipeline=Pipeline.load(index_dir), k=3)

        llm = RunnableLambda(stand_in_llm)
        chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()

        print("Q:", QUESTION)
        for doc in retriever.invoke(QUESTION):
            m = doc.metadata
            print(f"  retrieved {m['doc_id']}:{m['start']}-{m['end']}  score {m['score']:.3f}  "
                  f"{len(doc.page_content)} chars: {' '.join(doc.page_content.split())[:70]}…")
        print("A:", chain.invoke(QUESTION))


if __name__ == "__main__":
    main()
