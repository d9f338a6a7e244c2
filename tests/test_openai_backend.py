"""generator.backend openai: any OpenAI-compatible chat server as the generator.

The happy path runs against a real server (llama-cpp-python's OpenAI-compatible server on the
packaged qwen2.5-0.5b, started here on a free loopback port; slow). Failure modes a real server
will not produce on demand (timeouts, 500, malformed JSON, a reply cut mid-stream) come from a
small stdlib HTTP server in a thread. The LangChain chat-model wrapper runs on LangChain's fake.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from longrag.cli import main
from longrag.config import GeneratorConfig, load_config
from longrag.errors import ConfigError, InputError
from longrag.generation import chosen_backend, load_generator
from longrag.generation.langchain_chat import LangChainGenerator, as_generator
from longrag.generation.estimate import estimate_tokens
from longrag.generation.openai_server import OpenAIGenerator, ServerError, api_root
from longrag.pipeline import Pipeline
from tests.helpers import CONTRACTS, REPO, FakeEncoder

KEY = "sk-test-4f8a1c9e2b7d-never-print-me"  # what the tests must never find in output or on disk
FILES = ("MIT.txt", "BSD-3-Clause.txt", "Zlib.txt")
QUESTION = "What must redistributions of the software include?"
MESSAGES = [{"role": "system", "content": "Answer with one word."},
            {"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a fake server for the failure modes ------------------------------------------------------------
class Fake:
    """An OpenAI-style server in a thread whose chat completions fail as `mode` says: ok, sleep, 401,
    404, 500, malformed, cut, too_long. `props` (an n_ctx) makes GET /props report a context."""

    def __init__(self, mode: str = "ok", props: int | None = None, sleep: float = 3.0):
        self.mode, self.props, self.sleep = mode, props, sleep
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path == "/props" and fake.props:
                    return self._json(200, {"default_generation_settings": {"n_ctx": fake.props}})
                self._json(404, {"error": {"message": "File Not Found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "File Not Found"}})
                fake.chat(self, body)

            def _json(self, status, obj, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up (timeout tests): quiet
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def chats(self) -> int:
        return sum(path == "/v1/chat/completions" for _, path, _ in self.requests)

    def chat(self, handler, body):
        mode, stream = self.mode, body.get("stream")
        if mode == "sleep":
            time.sleep(self.sleep)
        if mode == "401":  # as OpenAI does, the refusal echoes the key it got: longrag must not print it
            key = handler.headers.get("Authorization", "").removeprefix("Bearer ")
            return handler._json(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
        if mode == "404":
            return handler._json(404, {"error": {"message": "The model `nope` does not exist"}})
        if mode == "500":
            return handler._json(500, {"error": {"message": "boom"}})
        if mode == "too_long":
            return handler._json(400, {"error": {"message": "This model's maximum context length is 512 tokens"}})
        if mode == "malformed" and not stream:
            return handler._json(200, None, raw=b'{"id": "x", "choices": [')
        if not stream:
            top = [{"token": "Paris", "logprob": -0.1}, {"token": " Paris", "logprob": -2.5},
                   {"token": "London", "logprob": -3.0}, {"token": "M", "logprob": -4.0}]
            logprobs = None if mode == "cut" else {"content": [{"token": "Paris", "logprob": -0.1, "top_logprobs": top}]}
            return handler._json(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                                       "choices": [{"index": 0, "finish_reason": "length", "logprobs": logprobs,
                                                    "message": {"role": "assistant", "content": "Paris"}}]})
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()  # HTTP/1.0: the body ends when the connection closes

        def event(content=None, finish=None):
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                     "choices": [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]}
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()

        if mode == "malformed":
            handler.wfile.write(b'data: {"id": "x", "choices": [{"delta": \n\n')
            return
        pieces = ("The ", "notice ", "must ", "be ", "kept ", "[1].")
        if mode == "loop":
            pieces = ("It ", "says ") + ("the ", "notice ", "must ", "be ", "kept ") * 40
        for piece in pieces:
            event(piece)
        if mode == "cut":
            return  # the connection closes without a finish_reason or [DONE]
        event(finish="stop")
        handler.wfile.write(b"data: [DONE]\n\n")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    servers = []

    def start(mode="ok", **kwargs):
        servers.append(Fake(mode, **kwargs))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def generator(base_url, **kwargs) -> OpenAIGenerator:
    return OpenAIGenerator(base_url, kwargs.pop("model", "fake"), **{"context_window": 4096, "max_retries": 0, **kwargs})


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize("section, message", [
    ({"backend": "openai"}, "needs generator.base_url"),
    ({"backend": "openai", "base_url": "http://127.0.0.1:1/v1", "extension": "yarn", "factor": 2.0},
     "generator.extension 'yarn' is not available with generator.backend 'openai'"),
    ({"base_url": "http://127.0.0.1:1/v1"}, "generator.base_url is for generator.backend: openai"),
    ({"backend": "openai", "base_url": "127.0.0.1:8080"}, "must be an http:// or https:// URL"),
    ({"backend": "openai", "base_url": "http://h/v1", "context_window": 0}, "context_window must be a positive"),
    ({"backend": "openai", "base_url": "http://h/v1", "timeout": 0}, "generator.timeout must be > 0"),
    ({"backend": "openai", "base_url": "http://h/v1", "max_retries": -1}, "generator.max_retries must be >= 0"),
    ({"backend": "openai", "base_url": "http://h/v1", "threads": 2}, "remove generator.threads"),
])
def test_the_server_keys_are_checked(section, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config({"generator": section})


def test_a_key_pasted_as_api_key_env_is_refused_and_not_echoed():
    with pytest.raises(ConfigError, match="NAME of an environment variable") as caught:
        load_config({"generator": {"backend": "openai", "base_url": "http://h/v1", "api_key_env": KEY}})
    assert KEY not in str(caught.value)


def test_auto_never_picks_the_server_and_a_missing_base_url_is_refused():
    for model in ("qwen2.5-0.5b", "some/hub-model", "/tmp/x.gguf"):
        assert chosen_backend(GeneratorConfig(model=model)) != "openai"
    with pytest.raises(ConfigError, match="needs generator.base_url"):
        load_generator(GeneratorConfig(backend="openai"))  # unvalidated settings too
    with pytest.raises(ConfigError, match="'linear' is not available"):
        load_generator(GeneratorConfig(backend="openai", base_url="http://h/v1", extension="linear", factor=2.0))
    config = load_config({"generator": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                                        "context_window": 2048}})
    made = load_generator(config.generator)  # nothing is sent until the generator is used
    assert isinstance(made, OpenAIGenerator) and made.backend == "openai" and made.name == "m"


def test_a_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("LONGRAG_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"names LONGRAG_TEST_KEY, which is not set"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "m", api_key_env="LONGRAG_TEST_KEY")


def test_the_api_root_drops_v1():
    assert api_root("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    assert api_root("https://example.com/openai/v1") == "https://example.com/openai"
    assert api_root("http://localhost:1234") == "http://localhost:1234"


def test_the_token_estimate_is_conservative_on_awkward_text():
    """Against Qwen2.5's own counts of these strings (llama.cpp, measured once): never below."""
    qwen = {"Section 2.1(b) of the 2019-03-04 Agreement, $1,250,000.": 33, "第一条 本协议由双方签订。": 8,
            "    (a)  the Licensee shall": 9, "x" * 50: 7, "Phone: +1 (555) 123-4567; Fax: +1 (555) 765-4321.": 34}
    for text, true in qwen.items():
        assert estimate_tokens(text) >= true, text
    assert estimate_tokens("") == 0 and estimate_tokens("abc") == 1


# -- the backend against the fake server --------------------------------------------------------
def test_a_streamed_reply_joins_its_pieces_and_scores_come_from_top_logprobs(fake):
    server = fake("ok")
    gen = generator(server.base_url)
    pieces = []
    assert gen.chat(MESSAGES, 32, stream=pieces.append) == "The notice must be kept [1]."
    assert "".join(pieces) == "The notice must be kept [1]." and len(pieces) >= 2
    assert gen.capabilities == frozenset({"score"})  # no tokenizer endpoint: estimated tokens
    assert gen.count_tokens("hello world") == estimate_tokens("hello world")
    paris, london, rome = gen.choice_logprobs(MESSAGES, ["Paris", "London", "Rome"])
    assert paris == pytest.approx(math.log(math.exp(-0.1) + math.exp(-2.5)))  # "Paris" and " Paris"
    assert london == pytest.approx(-3.0) and rome == pytest.approx(-4.0 - math.log(2))  # absent: min − log 2


def test_a_reply_that_repeats_itself_is_stopped_as_the_local_backends_stop(fake):
    pieces = []
    text = generator(fake("loop").base_url).chat(MESSAGES, 256, stream=pieces.append)
    assert text == "It says " + "the notice must be kept " * 2  # the first repeat of 8 pieces is cut
    assert "".join(pieces) == text


def test_the_window_comes_from_the_server_or_the_config(fake):
    assert generator(fake("ok", props=2048).base_url, context_window=None).window == 2048
    with pytest.raises(ConfigError, match="runs with a context of 2048 tokens"):
        _ = generator(fake("ok", props=2048).base_url, context_window=8192).window
    with pytest.raises(ConfigError, match="set generator.context_window"):
        _ = generator(fake("ok").base_url, context_window=None).window


def test_a_prompt_over_the_window_is_refused_before_sending(fake):
    server = fake("ok")
    gen = generator(server.base_url, context_window=64)
    with pytest.raises(InputError, match=r"prompt has \d+ tokens \(estimated\) and 32 are kept .* window of 64"):
        gen.chat([{"role": "user", "content": "word " * 100}], 32)
    assert server.chats() == 0


def test_5xx_is_retried_and_401_is_not_and_the_key_never_shows(fake, monkeypatch):
    monkeypatch.setenv("LONGRAG_TEST_KEY", KEY)
    server = fake("500")
    with pytest.raises(ServerError, match=r"failed with HTTP 500 after 2 retries: boom"):
        generator(server.base_url, max_retries=2).chat(MESSAGES, 8)
    assert server.chats() == 3
    server = fake("401")
    with pytest.raises(ConfigError, match=r"refused the API key in \$LONGRAG_TEST_KEY \(HTTP 401\)") as caught:
        generator(server.base_url, max_retries=2, api_key_env="LONGRAG_TEST_KEY").chat(MESSAGES, 8)
    assert server.chats() == 1 and KEY not in str(caught.value)
    assert server.requests[-1][2]["authorization"] == f"Bearer {KEY}"  # the key was sent, to the server only
    assert KEY not in repr(generator(server.base_url, api_key_env="LONGRAG_TEST_KEY"))


@pytest.mark.parametrize("mode, error, message", [
    ("404", ConfigError, "answered 404 for model 'fake'"),
    ("too_long", InputError, "refused the prompt as too long"),
    ("malformed", ServerError, "not valid JSON of the OpenAI API"),
    ("cut", ServerError, "ended its reply before it finished"),
])
def test_each_failure_is_one_clear_error(fake, mode, error, message):
    with pytest.raises(error, match=message):
        generator(fake(mode).base_url).chat(MESSAGES, 8)


def test_a_timeout_and_a_server_that_is_not_running(fake):
    with pytest.raises(ServerError, match=r"did not answer within 0\.5 s \(generator\.timeout\)"):
        generator(fake("sleep", sleep=2.0).base_url, timeout=0.5, max_retries=2).chat(MESSAGES, 8)
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerError, match=rf"cannot reach the generator server at {url} \(connection refused\): "
                                          r"is the server running\?"):
        generator(url).chat(MESSAGES, 8)


# -- the CLI: one error line, exit 2, the index untouched -----------------------------------------
def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def index_of(names, work: Path, encoder=None) -> Path:
    """An index of these example contracts under `work` (the packaged encoder unless one is given)."""
    docs = work / "docs"
    docs.mkdir()
    for name in names:
        shutil.copy(CONTRACTS / name, docs / name)
    Pipeline.from_config({}, encoder=encoder).index([docs], index_dir=work / "index", progress=False)
    return work / "index"


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory):
    """Three licences indexed with the fake encoder (no model weights)."""
    return index_of(FILES, tmp_path_factory.mktemp("openai-index"), FakeEncoder())


def ask(index: Path, tmp_path: Path, generator_section: dict, *extra: str):
    """`longrag ask` with a config file holding `generator_section`: (exit code, stdout, stderr)."""
    config = tmp_path / "server.yaml"
    # answerable null: these tests are about the request that writes the answer, which the check that the
    # quotes answer the question (a short prompt of its own) would otherwise stop first
    config.write_text(json.dumps({"generator": {"backend": "openai", "max_new_tokens": 32, **generator_section},
                                  "ask": {"min_relevance": -1.0, "answerable": None}}))
    result = CliRunner().invoke(main, ["ask", QUESTION, "--index", str(index), "--config", str(config), *extra])
    return result.exit_code, result.stdout, result.stderr


def one_error_line(code: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("mode, section, message", [
    ("down", {}, r"cannot reach the generator server at http://127\.0\.0\.1:\d+/v1 \(connection refused\): "
                 r"is the server running\?"),
    ("sleep", {"timeout": 0.5}, r"did not answer within 0\.5 s"),
    ("401", {"api_key_env": "LONGRAG_TEST_KEY"}, r"refused the API key in \$LONGRAG_TEST_KEY"),
    ("500", {"max_retries": 1}, r"failed with HTTP 500 after 1 retries: boom"),
    ("malformed", {}, r"not valid JSON of the OpenAI API"),
    ("cut", {}, r"ended its reply before it finished"),
    ("ok", {"context_window": 300}, r"prompt has \d+ tokens \(estimated\) and 32 are kept .* window of 300"),
    ("ok", {"context_window": 200}, r"budget \(ask\.budget\) of 160 tokens does not fit the generator's window of 200"),
])
def test_cli_failures_are_one_error_line_and_change_nothing(fake_index, fake, tmp_path, monkeypatch, mode, section,
                                                            message):
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    monkeypatch.setenv("LONGRAG_TEST_KEY", KEY)
    base_url = f"http://127.0.0.1:{free_port()}/v1" if mode == "down" else fake(mode, sleep=2.0).base_url
    before = snapshot(fake_index)
    code, out, err = ask(fake_index, tmp_path, {"base_url": base_url, "context_window": 4096, "max_retries": 0,
                                                **section}, "--budget", "160")
    line = one_error_line(code, err)
    assert re.search(message, line), line
    assert KEY not in out + err
    assert snapshot(fake_index) == before


# -- a real server: llama-cpp-python's OpenAI-compatible server on the packaged model ---------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """llama-cpp-python's server on qwen2.5-0.5b (the Q8_0 copy the llama.cpp backend runs), with an
    API key; yields its base_url."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("uvicorn", reason="llama-cpp-python[server] (extra llama) is not installed")
    from longrag.generation.llama_cpp import requantised
    from longrag.generation.weights import gguf_file, llama_cpp_type

    model = requantised(gguf_file("qwen2.5-0.5b"), llama_cpp_type("qwen2.5-0.5b"))
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cores = str(len(os.sched_getaffinity(0)))
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                    "--port", str(port), "--n_ctx", "4096", "--n_threads", cores, "--n_threads_batch",
                                    cores, "--api_key", KEY], stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the server did not start in 180 s"
            try:
                request = urllib.request.Request(base_url + "/models", headers={"Authorization": f"Bearer {KEY}"})
                with urllib.request.urlopen(request, timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def remote(served):
    os.environ["LONGRAG_TEST_KEY"] = KEY  # module scope: monkeypatch is per test
    yield OpenAIGenerator(served, "qwen2.5-0.5b", api_key_env="LONGRAG_TEST_KEY", context_window=4096)
    os.environ.pop("LONGRAG_TEST_KEY", None)


@pytest.mark.slow
def test_real_server_streams_a_reply_that_joins_its_pieces(remote):
    pieces = []
    text = remote.chat(MESSAGES, 16, stream=pieces.append)
    assert text == "".join(pieces) and "Paris" in text
    assert remote.capabilities == frozenset({"tokens", "score"})  # /extras/tokenize, top_logprobs


@pytest.mark.slow
def test_real_server_counts_tokens_as_the_local_llama_cpp_backend(remote):
    from longrag.generation.llama_cpp import LlamaCppGenerator

    local = LlamaCppGenerator.from_settings("qwen2.5-0.5b", threads=1)
    texts = [(CONTRACTS / "MIT.txt").read_text(), "Section 2.1(b), 2019-03-04: $1,250,000.", "第一条 本协议由双方签订。",
             "naïve café <|im_end|> end"]
    for text in texts:
        assert remote.count_tokens(text) == local.count_tokens(text)
    assert remote._tokens() == ("/extras/tokenize", "input")  # llama-cpp-python's; llama.cpp's own is /tokenize
    exact = local.count_chat(MESSAGES)
    assert exact <= remote.count_chat(MESSAGES) <= exact + 48  # the template estimated, never under


@pytest.mark.slow
def test_real_server_prefers_paris_to_london(remote):
    paris, london = remote.choice_logprobs(MESSAGES, ["Paris", "London"])
    assert paris > london and paris > math.log(0.5)


@pytest.fixture(scope="module")
def real_index(tmp_path_factory):
    work = tmp_path_factory.mktemp("openai-real-index")
    docs = work / "docs"
    docs.mkdir()
    for name in FILES:
        shutil.copy(CONTRACTS / name, docs / name)
    Pipeline.from_config({}, encoder=FakeEncoder()).index([docs], index_dir=work / "index", progress=False)
    return work / "index"


@pytest.mark.slow
def test_real_server_answers_through_the_cli_and_the_key_is_nowhere(served, real_index, tmp_path, monkeypatch):
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    monkeypatch.setenv("LONGRAG_TEST_KEY", KEY)
    section = {"base_url": served, "model": "qwen2.5-0.5b", "api_key_env": "LONGRAG_TEST_KEY", "context_window": 4096}
    before = snapshot(real_index)
    code, out, err = ask(real_index, tmp_path, section, "--budget", "256")
    assert code == 0, err
    assert "qwen2.5-0.5b on openai" in err  # the server's model read the evidence (shown or withheld by the check)
    code, json_out, err2 = ask(real_index, tmp_path, section, "--budget", "256", "--json")
    answer = json.loads(json_out)
    assert code == 0 and answer["tokens_in"] > 0 and (answer["reading"] or answer["answer"]).strip()
    if answer["found"]:  # a fact answer through the server is pointed at (alignment: no logit control there)
        assert answer["check"]["method"] == "span check"
    if answer["found"] and not answer["withheld"]:
        span = answer["answer_span"]
        assert answer["answer"] == span["text"] == (CONTRACTS / span["doc_id"]).read_text()[span["start"]:span["end"]]
    info = CliRunner().invoke(main, ["info", "--index", str(real_index)])
    assert snapshot(real_index) == before  # ask writes nothing into the index
    everything = out + err + json_out + err2 + info.stdout + info.stderr
    assert KEY not in everything
    assert not [p for p in real_index.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    manifests = list(real_index.rglob("manifest.json"))
    assert manifests and all(KEY not in m.read_text() for m in manifests)
    # a wrong key: the server's 401, one line naming the variable, not the key
    monkeypatch.setenv("LONGRAG_TEST_KEY", "wrong-" + KEY[::-1])
    code, out, err = ask(real_index, tmp_path, section, "--budget", "256")
    line = one_error_line(code, err)
    assert "refused the API key in $LONGRAG_TEST_KEY (HTTP 401)" in line and KEY[::-1] not in out + err


@pytest.mark.slow
def test_real_server_refusals_through_the_cli(served, real_index, tmp_path, monkeypatch):
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    monkeypatch.setenv("LONGRAG_TEST_KEY", KEY)
    section = {"base_url": served, "api_key_env": "LONGRAG_TEST_KEY"}
    before = snapshot(real_index)
    # llama-cpp-python's server does not report its context: the key must be set
    code, _, err = ask(real_index, tmp_path, section)
    assert "set generator.context_window" in one_error_line(code, err)
    # a prompt over context_window: refused before sending, with the numbers (counted by the server)
    code, _, err = ask(real_index, tmp_path, {**section, "context_window": 360}, "--budget", "260")
    line = one_error_line(code, err)
    assert re.search(r"prompt has \d+ tokens \(counted by the server\) and 32 are kept for the answer: \d+ > "
                     r"the generator's window of 360", line), line
    assert snapshot(real_index) == before


# -- a LangChain chat model as the generator -------------------------------------------------------
def fake_chat_model(*replies: str):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


def test_a_langchain_chat_model_answers_as_a_generator():
    gen = as_generator(fake_chat_model("Paris is the capital [1]."), context_window=4000)
    assert isinstance(gen, LangChainGenerator) and gen.window == 4000 and gen.capabilities == frozenset()
    pieces = []
    assert gen.chat(MESSAGES, 64, stream=pieces.append) == "Paris is the capital [1]."
    assert "".join(pieces) == "Paris is the capital [1]." and len(pieces) > 1
    assert gen.count_chat(MESSAGES) > sum(gen.count_tokens(m["content"]) for m in MESSAGES)
    assert as_generator(fake_chat_model("x")).window == 8192
    with pytest.raises(ConfigError, match="needs log-probabilities"):
        gen.choice_logprobs(MESSAGES, ["Yes", "No"])


def test_a_langchain_reply_that_loops_is_stopped_and_a_long_prompt_refused():
    gen = as_generator(fake_chat_model("It is " + "the same words again " * 30), context_window=200)
    text = gen.chat(MESSAGES, 64)
    assert text.count("the same words again") < 6
    with pytest.raises(InputError, match=r"window of 200"):
        gen.chat([{"role": "user", "content": "word " * 200}], 16)


def test_as_generator_passes_backends_through_and_refuses_anything_else(fake):
    backend = generator(fake("ok").base_url)
    assert as_generator(backend) is backend
    with pytest.raises(ConfigError, match="has its own window"):
        as_generator(backend, context_window=100)
    with pytest.raises(ConfigError, match="GeneratorBackend or a LangChain BaseChatModel, got str"):
        as_generator("gpt-4o")


@pytest.mark.slow
def test_the_example_app_answers_through_a_langchain_chat_model_on_the_real_server(served, tmp_path):
    """examples/own_chat_model.py: its chat model, given to the Pipeline, reads a yes/no question from
    the quotes (asked for a plain Yes or No: a chat model gives no log-probabilities) and quotes first."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("own_chat_model", REPO / "examples" / "own_chat_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    index = index_of(("Apache-2.0.txt", "MIT.txt", "BSD-3-Clause.txt"), tmp_path)
    chat = example.LocalServerChat(base_url=served, api_key=KEY, max_tokens=64)
    pipe = Pipeline.load(index, generator=chat, context_window=4096)
    answer = pipe.ask("Can I use the licensor's trademarks under the Apache License?")
    assert pipe.generator.backend == "langchain" and pipe.checker is pipe.generator
    assert answer.quotes and answer.quotes[0].doc_id == "Apache-2.0.txt"
    assert answer.check["method"] == "yes/no likelihood" and answer.reading in ("Yes.", "No.")
    assert answer.answer == (f"no answer shown: {answer.withheld}" if answer.withheld else answer.reading)
