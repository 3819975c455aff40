"""Cross-encoder rerankers for retbench."""
