"""Data: the shared types (passages, Arrow corpora, splits, runs, records), corpus preparation,
split expressions, checked line readers, downloads, and the built-in dataset loaders."""
