"""The run engine: a run is the table of stages in :mod:`retbench.engine.stages`, walked by
:class:`retbench.engine.state.RunState`; :func:`evaluate` turns it into a RunRecord."""

from retbench.engine.evaluate import evaluate, prepare_dataset, train_only
from retbench.engine.state import load_split

__all__ = ["evaluate", "load_split", "prepare_dataset", "train_only"]
