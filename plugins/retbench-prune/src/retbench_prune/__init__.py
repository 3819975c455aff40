"""retbench-prune: ``retbench prune``, structured pruning of a causal LM (Sheared-LLaMA, as DRAMA uses it)."""
