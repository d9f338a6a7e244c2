"""ask.budget's rules, in one place: its one lower bound (a config file, --budget and the API all
hold to it) and that the question must fit the budget it is asked with. Errors name the setting;
the CLI translates it to its flag."""
from __future__ import annotations

from typing import Any

from .errors import ConfigError, InputError

MIN_BUDGET = 16  # evidence tokens: fewer cannot hold a question and a sentence of evidence


def check_budget(budget: Any) -> None:
    """A budget is a whole number of at least MIN_BUDGET tokens."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise ConfigError(f"ask.budget must be a whole number of at least {MIN_BUDGET} tokens, got {budget!r}")


def check_question_fits(question_tokens: int, budget: int) -> None:
    """The question must fit the evidence budget it is asked with (ask, and every selector)."""
    if question_tokens > budget:
        raise InputError(f"the question has {question_tokens} tokens, more than the evidence budget of {budget}; "
                         "shorten it or raise ask.budget")
