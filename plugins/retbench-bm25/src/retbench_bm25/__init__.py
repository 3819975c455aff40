"""BM25 for retbench. Importing this package is cheap: backends load when a run uses them."""
