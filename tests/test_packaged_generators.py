"""Generators shipped as GGUF parts across packages: reassembled in order into the cache, checked
against a pinned sha256, and a missing or wrong part is one line naming what to reinstall."""
import hashlib

import pytest

from longrag.errors import ModelNotFoundError
from longrag.files import package_file
from longrag.generation.weights import PACKAGED_GENERATORS, PackagedGGUF, reassembled

CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"tail"]


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three installed part packages, as pip lays them out (package/data/partNN.bin)."""
    for i, chunk in enumerate(CHUNKS, 1):
        folder = tmp_path / "site" / f"fake_model_part{i}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise ImportError('never imported')\n")
        (folder / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("LONGRAG_CACHE", str(tmp_path / "cache"))
    return PackagedGGUF("fake.gguf", tuple((f"fake_model_part{i}", f"data/part{i:02d}.bin", f"fake-model-part{i}==1.0")
                                           for i in range(1, 4)), hashlib.sha256(b"".join(CHUNKS)).hexdigest())


def test_parts_are_reassembled_in_order_once(parts):
    path = reassembled(parts, "packaged generator 'fake'")
    assert path.read_bytes() == b"".join(CHUNKS)
    stamp = path.stat().st_mtime_ns
    assert reassembled(parts, "packaged generator 'fake'") == path and path.stat().st_mtime_ns == stamp


def test_a_missing_part_names_its_package(parts, tmp_path):
    (tmp_path / "site" / "fake_model_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelNotFoundError, match=r"\(part 2 of 3\).*pip install --force-reinstall fake-model-part2==1.0"):
        reassembled(parts, "packaged generator 'fake'")


def test_a_wrong_part_fails_the_pinned_hash_and_leaves_nothing(parts, tmp_path):
    (tmp_path / "site" / "fake_model_part3" / "data" / "part03.bin").write_bytes(b"tampered")
    with pytest.raises(ModelNotFoundError, match="not the pinned .*--force-reinstall fake-model-part1==1.0"):
        reassembled(parts, "packaged generator 'fake'")
    assert not list((tmp_path / "cache").rglob("*fake.gguf*"))


def test_the_packaged_qwen_parts_are_pinned():
    for name, count in (("qwen2.5-0.5b", 6), ("qwen2.5-1.5b", 22)):
        packaged = PACKAGED_GENERATORS[name]
        assert len(packaged.parts) == count and len(packaged.sha256) == 64
        assert packaged.parts[0][1] == "data/part01.bin" and packaged.parts[-1][1] == f"data/part{count:02d}.bin"


def test_the_installed_qwen_05b_reassembles_to_its_pinned_hash():
    """The real parts that .ci/setup installs (about 490 MB, a few seconds to concatenate and hash)."""
    packaged = PACKAGED_GENERATORS["qwen2.5-0.5b"]
    package_file(*packaged.parts[0][:2], "qwen2.5-0.5b part 1", packaged.parts[0][2])  # installed, or a clear error
    path = reassembled(packaged, "packaged generator 'qwen2.5-0.5b'")
    with path.open("rb") as handle:
        assert path.stat().st_size > 400e6 and handle.read(4) == b"GGUF"
