"""PRAG and DyPRAG for retbench: passages injected into the generator as LoRA weights."""
