"""Built-in metrics: retrieval through ir-measures, answer EM/F1, and cost."""
