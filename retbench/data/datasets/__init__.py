"""Built-in dataset loaders, registered through ``retbench_register_datasets``."""
