import pytest

from longrag.config import load_config, with_overrides
from longrag.errors import ConfigError
from tests.helpers import REPO


def test_defaults_and_shipped_configs_load():
    assert load_config(None).encoder.model == "all-MiniLM-L6-v2"
    for path in (REPO / "configs").glob("*.yaml"):
        load_config(path)  # every shipped preset is valid


@pytest.mark.parametrize("data, message", [
    ({"encodr": {}}, "did you mean encoder"),
    ({"encoder": {"modle": "x"}}, "encoder.modle; did you mean encoder.model"),
    ({"generator": {"window": 512}}, "generator.window; it is now generator.selfextend_window"),
    ({"index": {"mode": "pages"}}, "index.mode must be one of"),
    ({"search": {"k": "ten"}}, "'search.k' must be int"),
    ({"search": {"k": 0}}, "search.k must be positive"),
    ({"encoder": {"temperature": "hot"}}, "encoder.temperature"),
    ({"encoder": {"document_method": "magic"}}, "encoder.document_method must be one of"),
])
def test_bad_keys_and_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(data)


def test_yaml_file_and_misspelt_key(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("encoder:\n  temperature: log\nsearch:\n  k: 3\n")
    assert load_config(good).search.k == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("segmenter:\n  max_tokns: 100\n")
    with pytest.raises(ConfigError, match="segmenter.max_tokns; did you mean segmenter.max_tokens"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_are_validated():
    config = with_overrides(load_config(None), index={"mode": "document"})
    assert config.index.mode == "document"
    with pytest.raises(ConfigError):
        with_overrides(config, index={"mode": "nope"})


def test_default_yaml_names_every_key_with_a_comment():
    """configs/default.yaml documents every key of every section (README, "Configuration"), each on a
    line with its comment, and holds exactly the defaults."""
    import dataclasses

    import yaml

    from longrag.config import Config

    path = REPO / "configs" / "default.yaml"
    written = yaml.safe_load(path.read_text())
    sections = {f.name: [k.name for k in dataclasses.fields(f.default_factory())] for f in dataclasses.fields(Config)}
    assert {name: sorted(keys) for name, keys in sections.items()} == {
        name: sorted(written.get(name) or {}) for name in sections}
    lines = path.read_text().splitlines()
    for section, keys in sections.items():
        start = lines.index(f"{section}:")
        for key in keys:
            line = next(l for l in lines[start + 1:] if l.startswith(f"  {key}:"))
            assert "#" in line, f"{section}.{key} has no comment in configs/default.yaml"
    assert load_config(path) == load_config(None)
