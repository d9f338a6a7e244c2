"""Session-wide test settings and shared fixtures.

Every test runs offline (HF_HUB_OFFLINE, and pytest-socket refusing any host but the loopback:
see pyproject.toml) and writes only under temp dirs: HOME, the longrag model cache and the Hugging Face
cache point into one session folder, so a model converted by one test is reused by the next
and the user's own caches are never written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="longrag-tests-"))
_HOME = _SESSION_DIR / "home"
# before anything imports huggingface_hub, which reads these once
os.environ.update({
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "HOME": str(_HOME), "XDG_CACHE_HOME": str(_HOME / ".cache"), "HF_HOME": str(_HOME / ".cache" / "huggingface"),
    "MPLCONFIGDIR": str(_HOME / ".config" / "matplotlib"), "LONGRAG_CACHE": str(_SESSION_DIR / "longrag-cache"),
})

import pytest  # noqa: E402

from tests.helpers import FakeEncoder  # noqa: E402


def pytest_configure(config):
    _HOME.mkdir(exist_ok=True)


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture
def fake_encoder():
    return FakeEncoder()


@pytest.fixture
def corpus(tmp_path):
    """A few small real-looking documents in a temp folder."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "cats.txt").write_text("Cats are small domesticated felines. They purr and hunt mice. " * 20)
    (root / "rockets.md").write_text("# Rockets\n\nRockets burn propellant to produce thrust in space. " * 20)
    (root / "tea.html").write_text("<html><body><h1>Tea</h1><p>Green tea is brewed from unoxidised leaves.</p>"
                                   "<script>var x = 1;</script></body></html>")
    return root
