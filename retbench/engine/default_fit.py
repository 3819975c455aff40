"""Training questions for injectors that must be trained (DyPRAG's translator) when the run
names none: the injector's ``default_fit`` rule, made disjoint from the evaluated questions.

``default_fit = ((fit_start, fit_stop), (eval_start, eval_stop))`` reads: train on questions
``fit_start..fit_stop-1`` of the evaluated split, which is only allowed while the evaluated
questions lie within ``eval_start..eval_stop-1``. With no ``--split`` the evaluation becomes
that range. DyPRAG's rule is the papers': train on questions 300-499, test on the first 300.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from retbench import progress
from retbench.engine.config import RunConfig
from retbench.errors import ConfigError
from retbench.data.splits import parse_split


def with_default_fit_split(config: RunConfig, injector: Any, default_split: str) -> RunConfig:
    """``config`` with the injector's default training questions (and evaluated questions)
    filled in where the run needs them and names none; unchanged otherwise."""
    if config.fit_split or injector is None or not getattr(injector, "needs_fit", False):
        return config
    rule = getattr(injector, "default_fit", None)
    if rule is None:
        raise ConfigError(f"injector '{injector.name}' must be trained first: give --fit-split "
                          "(a question split disjoint from --split)")
    (fit_start, fit_stop), (eval_start, eval_stop) = rule
    split = config.split or f"{default_split}[{eval_start}:{eval_stop}]"
    name, part = parse_split(split)
    start = 0 if part is None or part.start is None else part.start
    stop = None if part is None else part.stop
    if start < eval_start or start < 0 or stop is None or stop < 0 or stop > eval_stop:
        raise ConfigError(
            f"injector '{injector.name}': without --fit-split it trains on {name}[{fit_start}:{fit_stop}], which is "
            f"disjoint only from {name}[{eval_start}:{eval_stop}]; evaluate within that (e.g. --split "
            f"'{name}[:{eval_stop}]') or give --fit-split")
    fit_split = f"{name}[{fit_start}:{fit_stop}]"
    progress.note(f"{injector.name}: no --fit-split given; training on {fit_split} (questions {fit_start}-"
                  f"{fit_stop - 1}, as the paper does), evaluating {split} (disjoint)")
    return dataclasses.replace(config, split=split, fit_split=fit_split)
