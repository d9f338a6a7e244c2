"""`longrag serve`'s sign-in token on a real uvicorn server (the fake encoder): asked on the page and on
every /api route, compared in constant time, replaced by an HttpOnly SameSite=Strict cookie after the
first visit, writes safe from other sites, and never in a log line or an index."""
import logging
import shutil

import httpx
import pytest

from longrag import Pipeline
from longrag.errors import InputError
from longrag.server import running
from longrag.server.signin import COOKIE, HideToken, cookie_value, read_token_file

from tests.helpers import CONTRACTS, FakeEncoder

TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    docs = tmp_path_factory.mktemp("signin-docs")
    for name in ("MIT.txt", "Zlib.txt"):
        shutil.copy(CONTRACTS / name, docs / name)
    target = tmp_path_factory.mktemp("indexes") / "signin"
    Pipeline.from_config(None, encoder=FakeEncoder()).index([docs], index_dir=target, progress=False)
    return target


@pytest.fixture(scope="module")
def url(index_dir):
    with running(Pipeline.load(index_dir, encoder=FakeEncoder()), token=TOKEN) as address:
        yield address


def test_without_the_token_every_api_route_is_401_and_the_page_asks_for_it(url):
    with httpx.Client(base_url=url) as client:
        for path in ("/api/info", "/api/indexes", "/api/documents", "/api/documents/MIT.txt", "/api/jobs",
                     "/api/search?q=licence", "/api/openapi.json", "/api/page/MIT.txt", "/api/events"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "sign in" in response.json()["detail"], path
        assert client.post("/api/ask", json={"question": "May I sell it?"}).status_code == 401
        assert client.delete("/api/documents/uploads/x.txt").status_code == 401
        assert client.post("/api/documents", files={"files": ("a.txt", b"hello")}).status_code == 401
        page = client.get("/")
        assert page.status_code == 401 and 'name="token"' in page.text and "Sign in" in page.text
        assert "MIT" not in page.text
        assert client.get("/static/app.js").status_code == 200  # the app's code holds no document


@pytest.mark.parametrize("wrong", ["x", TOKEN[:-1], TOKEN + "0", TOKEN.upper()])
def test_a_wrong_token_is_401(url, wrong):
    with httpx.Client(base_url=url) as client:
        assert client.get("/api/info", params={"token": wrong}).status_code == 401
        assert client.get("/api/info", params={"token": ""}).status_code == 401
        assert client.get("/api/info", headers={"authorization": f"token {wrong}"}).status_code == 401
        assert client.get("/api/info", headers={"cookie": f"{COOKIE}={cookie_value(wrong)}"}).status_code == 401
        assert client.get("/api/info", headers={"cookie": f"{COOKIE}={TOKEN}"}).status_code == 401  # not the cookie


def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_address(url):
    with httpx.Client(base_url=url) as client:
        first = client.get("/", params={"token": TOKEN, "q": "kept"}, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/?q=kept"
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={cookie_value(TOKEN)};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        page = client.get("/")  # the cookie alone now
        assert page.status_code == 200 and "<title>longrag</title>" in page.text
        assert client.get("/api/info").json()["documents"] == 2


def test_a_header_token_signs_in_an_api_client(url):
    for scheme in ("token", "Bearer"):
        response = httpx.get(f"{url}/api/info", headers={"authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200


def test_a_write_by_cookie_needs_the_page_header_and_its_own_origin(url):
    cookies = {COOKIE: cookie_value(TOKEN)}
    with httpx.Client(base_url=url, cookies=cookies) as client:
        plain = client.post("/api/ask", json={"question": "May I sell it?"})
        assert plain.status_code == 403 and "x-longrag" in plain.json()["detail"]
        foreign = client.delete("/api/documents/uploads/none.txt",
                                headers={"x-longrag": "1", "origin": "http://attacker.example"})
        assert foreign.status_code == 403 and "another site" in foreign.json()["detail"]
        own = client.delete("/api/documents/uploads/none.txt", headers={"x-longrag": "1", "origin": url})
        assert own.status_code == 404  # past the sign-in: there is no such document


def test_no_token_only_on_the_loopback(index_dir):
    with pytest.raises(InputError, match="only on the loopback"):
        with running(Pipeline.load(index_dir, encoder=FakeEncoder()), host="0.0.0.0"):
            pass


def test_a_token_file_must_hold_a_token_that_is_hard_to_guess(tmp_path):
    (tmp_path / "good").write_text(f"{TOKEN}\n")
    assert read_token_file(tmp_path / "good") == TOKEN
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(InputError, match="at least 16 characters"):
        read_token_file(tmp_path / "short")
    with pytest.raises(InputError, match="cannot read the token file"):
        read_token_file(tmp_path / "missing")


def test_the_access_log_never_shows_the_token():
    """uvicorn's access log line: client, method, path with its query, HTTP version, status."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/?q=a&token={TOKEN}&x=1", "1.1", 303), None)
    assert HideToken().filter(record)
    line = record.getMessage()
    assert TOKEN not in line and "token=[hidden]&x=1" in line and "q=a" in line


def test_the_token_is_in_no_file_of_the_index(url, index_dir):
    with httpx.Client(base_url=url, headers={"authorization": f"token {TOKEN}"}) as client:
        accepted = client.post("/api/documents", files={"files": ("note.txt", b"The zebra clause allows juggling.\n")},
                               params={"token": TOKEN})
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["accepted"][0]["job"]
        with client.stream("GET", "/api/events", timeout=120) as events:  # until the job is done
            for line in events.iter_lines():
                if line.startswith("data:") and f'"id": {job},' in line and '"state": "indexed"' in line:
                    break
    for path in index_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_the_command_refuses_no_token_off_the_loopback(index_dir):
    from click.testing import CliRunner

    from longrag.cli import main

    result = CliRunner().invoke(main, ["serve", "--index", str(index_dir), "--host", "0.0.0.0", "--no-token"])
    assert result.exit_code == 2 and "--no-token is allowed only on the loopback" in result.output


@pytest.mark.slow
def test_longrag_serve_prints_a_token_that_its_access_log_never_shows(tmp_path):
    """The command as its own process (real encoder and models): the URL it prints carries the
    token; following it signs in; uvicorn's access log shows the request without it."""
    import re
    import signal
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CONTRACTS / "MIT.txt", docs / "MIT.txt")
    Pipeline.from_config(None).index([docs], index_dir=tmp_path / "index", progress=False)
    log = tmp_path / "stderr.txt"  # a file: nobody reads stderr while the test waits on stdout
    command = [sys.executable, "-m", "longrag.cli", "serve", "--index", str(tmp_path / "index"), "--port", "0"]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True)
        try:
            process.stdout.readline()  # Loading …
            serving = process.stdout.readline()
            url, token = re.search(r"at (http://127\.0\.0\.1:\d+)/\?token=([0-9a-f]{48}) ", serving).groups()
            first = httpx.get(f"{url}/?token={token}", follow_redirects=False)
            assert first.status_code == 303 and "HttpOnly" in first.headers["set-cookie"]
            assert httpx.get(f"{url}/api/info").status_code == 401
        finally:
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=60)
    logged = rest + log.read_text()  # uvicorn's access log goes to stdout, its other lines to stderr
    assert "GET /?token=[hidden] HTTP/1.1" in logged and "GET /api/info HTTP/1.1" in logged
    assert token not in logged
