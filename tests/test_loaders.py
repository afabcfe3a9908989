"""Loaders on small files in the real formats (written here) and on the real files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dynst_pyg.datasets.loaders as L
from dynst_pyg.datasets import (ChecksumMismatch, DataFileMissing, cache_dir, data_root, download, load_dataset,
                                load_los_loop, load_metr_la, load_pems08, load_pems_bay, sha256sum)


def write_metr_like(root: Path, T=40, ids=("773869", "767541", "767542"), header=True, name="metr-la",
                    h5="metr-la.h5", pkl="adj_mx.pkl", loc="graph_sensor_locations.csv", h5_ids=None):
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    idx = pd.date_range("2012-03-01", periods=T, freq="5min")
    vals = np.random.default_rng(0).uniform(20, 70, (T, len(ids)))
    vals[3, 1] = 0.0  # a missing reading
    pd.DataFrame(vals, index=idx, columns=list(h5_ids or ids)).to_hdf(d / h5, key="df")
    adj = np.eye(len(ids), dtype=np.float32)
    adj[0, 1] = 0.5
    with open(d / pkl, "wb") as fh:
        pickle.dump([list(ids), {s: i for i, s in enumerate(ids)}, adj], fh, protocol=2)
    with open(d / loc, "w") as fh:
        if header:
            fh.write("index,sensor_id,latitude,longitude\n")
            for i, s in enumerate(ids):
                fh.write(f"{i},{s},34.{i},-118.{i}\n")
        else:
            for i, s in enumerate(ids):
                fh.write(f"{s},37.{i},-122.{i}\n")
    return vals


def test_metr_la_format(tmp_path):
    vals = write_metr_like(tmp_path)
    ds = load_metr_la(tmp_path)
    assert ds.series.shape == (40, 3, 1) and ds.null_value == 0.0
    # the null reading (0.0) is a missing cell: NaN in the series, False in the mask
    assert np.allclose(ds.series[..., 0].numpy(), np.where(vals == 0, np.nan, vals), atol=1e-4, equal_nan=True)
    assert ds.observed[..., 0].tolist() == (vals != 0).tolist() and not bool(ds.observed[3, 1, 0])
    assert ds.sensor_id == ["773869", "767541", "767542"] and ds.interval_minutes == 5
    assert ds.start.isoformat().startswith("2012-03-01")
    assert ds.num_edges == 4 and ds.pos[2].tolist() == pytest.approx([-118.2, 34.2])


def test_pems_bay_format_headerless_locations(tmp_path):
    write_metr_like(tmp_path, ids=("400001", "400017"), header=False, name="pems-bay", h5="pems-bay.h5",
                    pkl="adj_mx_bay.pkl", loc="graph_sensor_locations_bay.csv")
    ds = load_pems_bay(tmp_path)
    assert ds.num_nodes == 2 and ds.pos[1].tolist() == pytest.approx([-122.1, 37.1])


def test_mismatched_sensor_ids_fail_clearly(tmp_path):
    write_metr_like(tmp_path, h5_ids=("773869", "999999", "767542"))
    with pytest.raises(ValueError, match="sensor ids disagree at position 1"):
        load_metr_la(tmp_path)


def test_pems08_npz_with_duplicate_distance_rows(tmp_path):
    d = tmp_path / "pems08"
    d.mkdir()
    data = np.random.default_rng(1).uniform(0, 100, (30, 4, 3))
    np.savez(d / "PEMS08.npz", data=data)
    (d / "PEMS08.csv").write_text("from,to,cost\n0,1,100.0\n0,1,100.0\n1,2,300.0\n2,3,5000.0\n")
    ds = load_pems08(tmp_path)
    assert ds.series.shape == (30, 4, 3) and ds.feature_names == ["flow", "occupancy", "speed"]
    e = {tuple(p): w for p, w in zip(ds.edge_index.t().tolist(), ds.edge_weight.tolist())}
    # duplicates merged, both directions; sigma = std of the unique distances (100, 300, 5000)
    sigma = float(torch.tensor([100.0, 100.0, 300.0, 300.0, 5000.0, 5000.0], dtype=torch.float64).std())
    assert e[(0, 1)] == pytest.approx(np.exp(-(100 / sigma) ** 2), rel=1e-5)
    assert e[(1, 0)] == e[(0, 1)]
    assert (2, 3) not in e  # weight exp(-(5000/sigma)^2) < 0.1 is dropped


def test_missing_file_message_names_where_to_put_it(tmp_path):
    with pytest.raises(DataFileMissing) as info:
        load_metr_la(tmp_path)
    msg = str(info.value)
    assert "metr-la/metr-la.h5" in msg and str(tmp_path) in msg and "DYNST_DATA" in msg


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNST_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("/x") == Path("/x")


def test_download_verifies_checksum_without_network(tmp_path, monkeypatch):
    src = tmp_path / "src.csv"
    src.write_text("a,b\n1,2\n")
    good = sha256sum(src)
    root = tmp_path / "root"
    monkeypatch.setitem(L.FILES, "toy", [L.FileCard("toy/t.csv", good, src.as_uri(), "test")])
    paths = download("toy", root)
    assert paths == [root / "toy/t.csv"] and sha256sum(paths[0]) == good
    monkeypatch.setitem(L.FILES, "toy", [L.FileCard("toy/u.csv", "0" * 64, src.as_uri(), "test")])
    with pytest.raises(ChecksumMismatch, match="expected sha256 0000"):
        download("toy", root)
    assert not (root / "toy/u.csv").exists() and not (root / "toy/u.csv.part").exists()
    with pytest.raises(ValueError, match="name"):
        download("nope", root)


def test_load_dataset_by_name():
    ds = load_dataset("synthetic", num_nodes=30, num_steps=100)
    assert ds.num_nodes == 30
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("atlantis")


def test_load_dataset_refuses_options_the_loader_does_not_take(tmp_path):
    with pytest.raises(ValueError, match=r"does not take the option\(s\) \['features'\]"):
        load_dataset("los-loop", root=tmp_path, features=("speed",))
    with pytest.raises(ValueError, match="num_nodez"):
        load_dataset("synthetic", num_nodez=3)


def test_data_root_and_cache_dir_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("DYNST_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert data_root() == tmp_path / "shared" / "data"  # ../shared/data relative to the working directory
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "pyproject.toml").write_text("")
    monkeypatch.setattr(L, "_REPO_ROOT", tmp_path / "checkout")  # a source checkout next to shared/data
    assert data_root() == tmp_path / "shared" / "data"
    monkeypatch.setattr(L, "_REPO_ROOT", tmp_path / "installed")  # not a source checkout
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "dynst_pyg"
    monkeypatch.setenv("DYNST_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("DYNST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "dynst_pyg"
    monkeypatch.setenv("DYNST_CACHE", str(tmp_path / "dc"))
    assert cache_dir() == tmp_path / "dc" and cache_dir("/x") == Path("/x")


@pytest.mark.data
def test_real_files_checksums(los_loop):
    for card in L.FILES["los-loop"]:
        assert sha256sum(data_root() / card.relpath) == card.sha256


@pytest.mark.data
def test_real_metr_la_graph_matches_los_adj(los_loop, metr_la_adj_path):
    ids, adj = L._load_adj_pkl(metr_la_adj_path)
    assert ids == los_loop.sensor_id
    sym = np.maximum(adj, adj.T)
    dense = torch.zeros(207, 207)
    dense[los_loop.edge_index[0], los_loop.edge_index[1]] = los_loop.edge_weight
    assert np.allclose(dense.numpy(), sym, atol=1e-6)


def test_los_loop_id_mismatch_fails(tmp_path):
    (tmp_path / "los-loop").mkdir()
    (tmp_path / "metr-la").mkdir()
    (tmp_path / "los-loop/los_speed.csv").write_text("1,2\n50,60\n51,61\n")
    (tmp_path / "los-loop/los_adj.csv").write_text("1,0\n0,1\n")
    (tmp_path / "metr-la/graph_sensor_locations.csv").write_text("index,sensor_id,latitude,longitude\n0,1,34,-118\n1,3,34,-118\n")
    with pytest.raises(ValueError, match="position 1"):
        load_los_loop(tmp_path)


class _Marker:
    """Unpickling this runs ``open(path, 'w')``: the marker file appears if the loader runs code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_an_adjacency_pickle_runs_no_code(tmp_path):
    write_metr_like(tmp_path)
    ids, adj = L._load_adj_pkl(tmp_path / "metr-la" / "adj_mx.pkl")  # the real format still loads
    assert ids == ["773869", "767541", "767542"] and adj[0, 1] == pytest.approx(0.5)
    bad = tmp_path / "crafted.pkl"
    marker = tmp_path / "pwned"
    with open(bad, "wb") as fh:
        pickle.dump([["a"], {"a": 0}, _Marker(str(marker))], fh, protocol=2)
    with pytest.raises(ValueError, match=r"crafted.pkl: refuses to unpickle (io|builtins).open"):
        L._load_adj_pkl(bad)
    assert not marker.exists()
