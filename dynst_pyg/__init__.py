"""dynst_pyg: sensor pruning (DynST) and training-window pruning (ST-Prune) for PyG."""

__version__ = "0.1.0"
