"""Reading pickled data files without running code from them."""

from __future__ import annotations

import pickle
from pathlib import Path

__all__ = ["ArraysOnlyUnpickler"]

#: What a DCRNN ``adj_mx.pkl`` may contain: numpy arrays, dtypes and scalars, and bytes (plus builtin
#: containers, which pickle encodes without a lookup). Anything else would be code run by the unpickler.
ADJ_PICKLE_CLASSES = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol 2 stores bytes (str -> bytes, no side effect)
})


class ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and builtin containers and refuses every other object.

    A refused class raises :class:`ValueError` naming the file and the class, before any object
    of the file is built.

    Args:
        fh (binary file): The open pickle.
        path (Path): The file's path, for messages.
    """

    def __init__(self, fh, path: Path) -> None:
        super().__init__(fh, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in ADJ_PICKLE_CLASSES:
            return super().find_class(module, name)
        raise ValueError(f"{self.path}: refuses to unpickle {module}.{name}; an adjacency pickle holds only "
                         f"[sensor_ids, sensor_id_to_ind, adj_mx] as lists, dicts and numpy arrays")
