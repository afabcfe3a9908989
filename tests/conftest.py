"""Shared fixtures. Tests that need real data use the ``los_loop`` / ``data_file`` fixtures,
which FAIL (not skip) with a message naming the missing file and DYNST_DATA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.datasets import data_root


def require_data(relpath: str) -> Path:
    """Path of a file under the data root, or a test failure that says where to put it."""
    p = data_root() / relpath
    if not p.is_file():
        pytest.fail(f"this test needs the data file {relpath!r} under the data root {data_root()} "
                    f"(set DYNST_DATA to the folder that holds it; see datasets/README.md)", pytrace=False)
    return p


@pytest.fixture(scope="session")
def los_loop():
    """The real Los-loop dataset (207 METR-LA sensors, 2016 steps)."""
    require_data("los-loop/los_speed.csv")
    require_data("los-loop/los_adj.csv")
    require_data("metr-la/graph_sensor_locations.csv")
    from dynst_pyg.datasets import load_los_loop

    return load_los_loop()


@pytest.fixture(scope="session")
def los_loop_splits(los_loop):
    return prepare(los_loop)


@pytest.fixture(scope="session")
def metr_la_adj_path() -> Path:
    return require_data("metr-la/adj_mx.pkl")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
