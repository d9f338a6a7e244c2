"""Answer from your documents with your own model: a LangChain chat model pointed at a local
OpenAI-compatible server (llama.cpp's `llama-server`, llama-cpp-python's server, vLLM, Ollama,
LM Studio), passed to the Pipeline as its generator.

    .venv/bin/python -m llama_cpp.server --model your-model.gguf --port 8080 --n_ctx 8192 &
    .venv/bin/longrag index examples/contracts
    .venv/bin/python examples/own_chat_model.py http://127.0.0.1:8080/v1 "May I charge a fee for copies?"

`LocalServerChat` is a minimal LangChain chat model over the `openai` client; with the
langchain-openai package installed, `ChatOpenAI(base_url=..., api_key=..., temperature=0)` does the same.
"""
from __future__ import annotations

import sys
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from longrag import Pipeline

ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalServerChat(BaseChatModel):
    """Greedy chat completions from an OpenAI-compatible server."""

    base_url: str
    model: str = "local"
    api_key: str = "not-needed"
    max_tokens: int = 256

    @property
    def _llm_type(self) -> str:
        return "openai-compatible-server"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key)
        reply = client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=self.max_tokens, stop=stop,
            messages=[{"role": ROLES[m.type], "content": m.content} for m in messages])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply.choices[0].message.content or ""))])


def main() -> None:
    base_url, question = sys.argv[1], sys.argv[2]
    pipe = Pipeline.load("indexes/contracts", generator=LocalServerChat(base_url=base_url), context_window=8192)
    answer = pipe.ask(question)
    for quote in answer.quotes:
        print(f"[{quote.block}] {quote.doc_id} [{quote.start}:{quote.end}] {quote.text}")
    print("No answer shown:" if answer.withheld else "Answer:", answer.withheld or answer.answer)


if __name__ == "__main__":
    main()
