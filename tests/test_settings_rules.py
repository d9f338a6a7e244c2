"""Each settings rule lives in one place and every edge reads it: ask.budget's one lower bound (a
config file, --budget, the API), the question-longer-than-the-budget rule, the openai backend's
keys, and search.k as the default of `search -k`; library errors name the setting, the CLI adds its flag."""
import json
from dataclasses import replace

import click
import pytest
from click.testing import CliRunner

from longrag.budget import MIN_BUDGET, check_budget, check_question_fits
from longrag.cli import _with_flags, main
from longrag.config import load_config
from longrag.errors import ConfigError, InputError
from longrag.generation.openai_server import OpenAIGenerator
from tests.helpers import FakeEncoder


def test_one_lower_bound_for_the_budget():
    assert load_config({"ask": {"budget": MIN_BUDGET}}).ask.budget == MIN_BUDGET
    for bad in (MIN_BUDGET - 1, 0, True, 20.5):
        with pytest.raises(ConfigError, match=f"ask.budget must be a whole number of at least {MIN_BUDGET} tokens"):
            check_budget(bad)
    with pytest.raises(ConfigError, match=f"ask.budget must be a whole number of at least {MIN_BUDGET}"):
        load_config({"ask": {"budget": MIN_BUDGET - 1}})
    refused = CliRunner().invoke(main, ["ask", "Does it?", "--budget", str(MIN_BUDGET - 1)])
    assert refused.exit_code == 2 and f"{MIN_BUDGET - 1} is not in the range x>={MIN_BUDGET}" in refused.stderr


def test_the_question_rule_names_the_setting_and_the_cli_its_flag():
    check_question_fits(20, 20)
    with pytest.raises(InputError) as raised:
        check_question_fits(21, 20)
    message = str(raised.value)
    assert message == ("the question has 21 tokens, more than the evidence budget of 20; shorten it or raise "
                       "ask.budget")

    @click.command()
    @click.option("--budget", type=int)
    def ask(budget):
        click.echo(_with_flags(message))

    @click.command()
    def info():
        click.echo(_with_flags(message))
    assert CliRunner().invoke(ask, []).output.strip().endswith("raise --budget (ask.budget)")
    assert CliRunner().invoke(info, []).output.strip().endswith("raise ask.budget")  # no such flag there


SERVER = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize("section, words", [
    ({"backend": "openai"}, "needs generator.base_url"),
    ({**SERVER, "extension": "yarn", "factor": 2.0}, "generator.extension 'yarn' is not available"),
    ({**SERVER, "threads": 2}, "remove generator.threads"),
    ({**SERVER, "api_key_env": "sk-abc"}, "must be the NAME of an environment variable"),
    ({"base_url": "http://127.0.0.1:9/v1"}, "generator.base_url is for generator.backend: openai"),
])
def test_the_openai_keys_are_checked_once_the_same_way_from_a_config_and_from_python(section, words):
    with pytest.raises(ConfigError, match=words) as from_config:
        load_config({"generator": section})
    given = replace(load_config(None).generator, **section)  # unchecked, as a Python caller may build it
    with pytest.raises(ConfigError) as from_python:
        OpenAIGenerator.from_settings(given)
    assert str(from_python.value) == str(from_config.value)
    assert "sk-abc" not in str(from_config.value)  # a pasted key is never echoed


def test_search_k_defaults_to_the_configured_search_k(monkeypatch, tmp_path, corpus):
    monkeypatch.setattr("longrag.pipeline.load_encoder", lambda settings: FakeEncoder())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGRAG_INDEXES", raising=False)
    (tmp_path / "two.yaml").write_text("search: {k: 2}\n")
    run = lambda *args: CliRunner().invoke(main, list(args))  # noqa: E731
    assert run("index", "docs", "--quiet").exit_code == 0
    assert len(json.loads(run("search", "tea rockets cats", "--json").stdout)) == 3  # search.k 10 > 3 documents
    assert len(json.loads(run("search", "tea rockets cats", "--json", "--config", "two.yaml").stdout)) == 2
    assert len(json.loads(run("search", "tea rockets cats", "--json", "-k", "1", "--config", "two.yaml").stdout)) == 1
