"""Retrieval with an LLM's help, and fusion of retrievers (``hybrid``)."""
