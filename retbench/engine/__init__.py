"""The run engine: a run is the table of stages in :mod:`retbench.engine.stages`, walked by
:class:`retbench.engine.state.RunState`; :func:`retbench.engine.evaluate.evaluate` turns it into a
RunRecord. Beside it: the run's configuration, component resolution, the cache, what the engine
accepts from components, cost measurements."""
