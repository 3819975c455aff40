"""Readers and generators for retbench. Importing this package is cheap: torch loads when a run uses it."""
