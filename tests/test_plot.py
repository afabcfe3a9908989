"""Tests of dynst_pyg.viz: figures are written, the right points are drawn, bad input raises."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dynst_pyg.data import SpatioTemporalDataset
from dynst_pyg.selection.mask import SensorMask
from dynst_pyg.viz import (km_per_degree, load_tradeoff_rows, plot_mask_comparison, plot_masks, plot_sensor_map,
                           plot_tradeoff)
from dynst_pyg.viz.geo import GID_SCALE
from dynst_pyg.viz.maps import GID_EDGES, GID_KEPT, GID_PRUNED

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _grid_dataset(n_side: int = 4, with_pos: bool = True) -> SpatioTemporalDataset:
    """n_side x n_side sensors on a lattice around Los Angeles, 4-neighbour edges both ways."""
    n = n_side * n_side
    src, dst = [], []
    for r in range(n_side):
        for c in range(n_side):
            i = r * n_side + c
            if c + 1 < n_side:
                src += [i, i + 1]
                dst += [i + 1, i]
            if r + 1 < n_side:
                src += [i, i + n_side]
                dst += [i + n_side, i]
    src.append(0)  # a self-loop, which must not be drawn
    dst.append(0)
    lon = -118.4 + 0.01 * torch.arange(n_side).repeat(n_side)
    lat = 34.0 + 0.01 * torch.arange(n_side).repeat_interleave(n_side)
    pos = torch.stack([lon, lat], dim=1) if with_pos else None
    return SpatioTemporalDataset(torch.rand(20, n, 1), torch.tensor([src, dst]), pos=pos, name="grid")


def _artist(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"expected one artist with gid {gid!r}, found {len(found)}"
    return found[0]


def _png_ok(path):
    assert path.is_file() and path.stat().st_size > 2000
    assert path.read_bytes()[:8] == PNG_MAGIC


# ----------------------------------------------------------------------------------------
def test_sensor_map_draws_kept_pruned_and_edges(tmp_path):
    ds = _grid_dataset()
    scores = torch.linspace(0.0, 1.0, 16)
    mask = SensorMask.from_scores(scores, sparsity=0.25, method="test")  # keeps the 12 highest
    fig, ax = plot_sensor_map(ds, mask)
    kept = _artist(ax, GID_KEPT).get_offsets()
    pruned = _artist(ax, GID_PRUNED).get_offsets()
    assert len(kept) == 12 and len(pruned) == 4
    # the pruned markers sit exactly at the pruned sensors' coordinates
    expected = ds.pos[mask.pruned].numpy()
    assert np.allclose(np.sort(np.asarray(pruned), axis=0), np.sort(expected, axis=0))
    # kept points are coloured by their score (array set on the collection, drawn low to high)
    colours = _artist(ax, GID_KEPT).get_array()
    assert np.allclose(np.sort(colours), np.sort(scores[mask.keep].numpy()))
    # 24 undirected lattice edges, each drawn once, the self-loop left out
    assert len(_artist(ax, GID_EDGES).get_segments()) == 24
    # legend names kept and pruned with their counts; a colour bar and a title are present
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("kept (12)" in t for t in texts) and any("pruned (4)" in t for t in texts)
    assert len(ax.child_axes) == 1  # the colour bar (an inset that follows the map box)
    assert ax.child_axes[0].get_ylabel() == "importance score of kept sensors"
    assert "kept 12/16" in ax.get_title()
    out = tmp_path / "map.png"
    fig.savefig(out, dpi=80)
    _png_ok(out)


def test_sensor_map_aspect_and_scale_bar_are_equirectangular():
    ds = _grid_dataset()
    fig, ax = plot_sensor_map(ds, None)
    lat0 = float(ds.pos[:, 1].mean())
    assert ax.get_aspect() == pytest.approx(1.0 / math.cos(math.radians(lat0)))
    bar = _artist(ax, GID_SCALE)
    kx, ky = km_per_degree(lat0)
    assert ky == pytest.approx(111.19, abs=0.01)
    assert kx == pytest.approx(111.19 * math.cos(math.radians(lat0)), rel=1e-4)
    # the bar's length in degrees of longitude times km/deg gives its label
    rect = bar.get_child().get_children()[0].get_children()[0]
    length_km = rect.get_width() * kx
    assert length_km == pytest.approx(bar.scale_km, rel=1e-9)
    label = bar.get_child().get_children()[1].get_text()
    assert label in (f"{bar.scale_km:g} km", f"{bar.scale_km * 1000:g} m")
    # 1-2-5 rounding to about a fifth of the map width (3 * 0.01 deg lon ~ 2.8 km -> 500 m)
    assert bar.scale_km == pytest.approx(0.5)
    # no mask: everything drawn as a sensor, no pruned marker in the legend, nothing pruned
    assert len(_artist(ax, GID_KEPT).get_offsets()) == 16
    assert len(_artist(ax, GID_PRUNED).get_offsets()) == 0
    assert not any("pruned" in t.get_text() for t in ax.get_legend().get_texts())


def test_sensor_map_bool_mask_tensor_pos_and_given_axes(tmp_path):
    ds = _grid_dataset()
    keep = torch.zeros(16, dtype=torch.bool)
    keep[[0, 5, 10]] = True
    fig, ax0 = plt.subplots()
    fig2, ax = plot_sensor_map(ds.pos, keep, ax=ax0, title="bare", scale_bar=False)
    assert fig2 is fig and ax is ax0 and ax.get_title() == "bare"
    assert len(_artist(ax, GID_KEPT).get_offsets()) == 3
    assert len(_artist(ax, GID_PRUNED).get_offsets()) == 13
    assert not [a for a in ax.get_children() if a.get_gid() == GID_EDGES]  # a bare tensor has no edges
    assert not [a for a in ax.get_children() if a.get_gid() == GID_SCALE]
    assert not ax.child_axes  # no scores -> no colour bar
    assert keep.sum() == 3  # caller's tensor untouched


def test_sensor_map_pyg_data_and_color_by_score_off():
    from torch_geometric.data import Data

    ds = _grid_dataset()
    data = Data(pos=ds.pos, edge_index=ds.edge_index, num_nodes=16)
    mask = SensorMask.from_scores(torch.rand(16), budget=8, method="random")
    fig, ax = plot_sensor_map(data, mask, color_by_score=False)
    assert len(_artist(ax, GID_KEPT).get_offsets()) == 8
    assert _artist(ax, GID_KEPT).get_array() is None  # one colour, no score mapping
    assert not ax.child_axes


def test_sensor_map_errors():
    ds = _grid_dataset()
    with pytest.raises(ValueError, match="no sensor coordinates"):
        plot_sensor_map(_grid_dataset(with_pos=False), None)
    from torch_geometric.data import Data

    with pytest.raises(ValueError, match="data.pos"):
        plot_sensor_map(Data(edge_index=ds.edge_index, num_nodes=16), None)
    with pytest.raises(ValueError, match="covers 10 sensors but the map has 16"):
        plot_sensor_map(ds, SensorMask.from_indices([0, 1], 10))
    with pytest.raises(ValueError, match="length N=16"):
        plot_sensor_map(ds, torch.ones(15, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        plot_sensor_map(ds, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"`scores` has 5 values, expected one per sensor \(16\)"):
        plot_sensor_map(ds, None, scores=torch.rand(5))
    with pytest.raises(ValueError, match="`scores` contains NaN"):
        plot_sensor_map(ds, None, scores=torch.full((16,), float("nan")))
    with pytest.raises(ValueError, match="'scores' contains infinite values"):
        plot_sensor_map(ds, None, scores=torch.full((16,), float("inf")))
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plot_sensor_map(torch.rand(16, 3), None)
    with pytest.raises(ValueError, match="lon, lat"):
        plot_sensor_map(torch.tensor([[34.0, 200.0], [34.1, 201.0]]), None)
    # planar coordinates are fine with geographic=False
    fig, ax = plot_sensor_map(torch.tensor([[0.0, 200.0], [10.0, 201.0]]), None, geographic=False)
    assert ax.get_aspect() == 1.0
    with pytest.raises(ValueError, match=r"`edge_index` has node indices in \[0, 99\] but the graph has 16 nodes"):
        plot_sensor_map(ds.pos, None, edge_index=torch.tensor([[0, 1], [1, 99]]))
    with pytest.raises(ValueError, match=r"`edge_index` must have shape \[2, E\]"):
        plot_sensor_map(ds.pos, None, edge_index=np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="`edge_index` must be an integer"):
        plot_sensor_map(ds.pos, None, edge_index=np.zeros((2, 2)))
    fig, ax = plot_sensor_map(ds.pos, None, edge_index=np.array([[0, 1], [1, 2]]))  # a numpy array is fine
    assert len(_artist(ax, GID_EDGES).get_segments()) == 2
    with pytest.raises(TypeError, match="dataset_or_pos"):
        plot_sensor_map("not a dataset", None)


def test_mask_comparison_jaccard_title_and_panels(tmp_path):
    ds = _grid_dataset()
    a = SensorMask.from_indices([0, 1, 2, 3, 4, 5], 16, scores=torch.arange(16.0), method="dynst-x")
    b = SensorMask.from_indices([3, 4, 5, 6, 7, 8], 16, method="random")
    fig, axes = plot_mask_comparison(ds, a, b)
    assert len(axes) == 2
    title = fig.get_suptitle()
    assert "DynST vs random" in title and "0.33" in title and "3 sensors kept by both" in title
    assert axes[0].get_title().startswith("DynST: kept 6/16")
    assert axes[1].get_title().startswith("random: kept 6/16")
    for ax in axes:
        assert len(_artist(ax, GID_KEPT).get_offsets()) == 6
        assert len(_artist(ax, GID_PRUNED).get_offsets()) == 10
    out = tmp_path / "cmp.png"
    fig.savefig(out, dpi=70)
    _png_ok(out)
    with pytest.raises(ValueError, match="same network"):
        plot_mask_comparison(ds, a, SensorMask.from_indices([0], 10))
    with pytest.raises(TypeError, match="mask_b"):
        plot_mask_comparison(ds, a, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="covers 10 sensors"):
        plot_mask_comparison(ds, SensorMask.from_indices([0], 10), SensorMask.from_indices([1], 10))


def test_plot_masks_three_panels():
    ds = _grid_dataset()
    masks = [SensorMask.from_indices(list(range(k)), 16, method=f"m{k}") for k in (4, 8, 12)]
    fig, axes = plot_masks(ds, masks, color_by_score=[True, False, True])
    assert [len(_artist(ax, GID_KEPT).get_offsets()) for ax in axes] == [4, 8, 12]
    assert [ax.get_title().split(":")[0] for ax in axes] == ["m4", "m8", "m12"]
    with pytest.raises(ValueError, match="one entry per mask"):
        plot_masks(ds, masks, labels=["a"])
    with pytest.raises(ValueError, match="one bool per mask"):
        plot_masks(ds, masks, color_by_score=[True])
    with pytest.raises(ValueError, match="empty"):
        plot_masks(ds, [])


# ----------------------------------------------------------------------------------------
def _rows():
    rows = []
    for sel, sched, slope in (("dynst", "iterative", 1.0), ("random", None, 3.0), ("qr", None, 2.0)):
        for sp in (0.3, 0.5, 0.7):
            for seed in (0, 1):
                rows.append(dict(dataset="los-loop", model="gwnet", selector=sel, schedule=sched, sparsity=sp,
                                 target="all", seed=seed, mae=5.0 + slope * sp + 0.1 * seed, rmse=9.0))
    rows.append(dict(dataset="los-loop", model="gwnet", selector="dense", schedule=None, sparsity=0.0,
                     target="all", seed=0, mae=4.5, rmse=8.0))
    return rows


def test_tradeoff_from_json_means_and_error_bars(tmp_path):
    path = tmp_path / "sparsity_tradeoff.json"
    path.write_text(json.dumps({"rows": _rows(), "machine": "test"}))
    fig, axes = plot_tradeoff(path)
    assert len(axes) == 1
    ax = axes[0]
    series = {c.get_label(): c for c in ax.containers}
    assert set(series) == {"dynst-iterative (2 seeds)", "random (2 seeds)", "qr (2 seeds)"}
    x, y = series["random (2 seeds)"].lines[0].get_data()
    assert np.allclose(x, [30, 50, 70])
    assert np.allclose(y, [5.0 + 3.0 * s + 0.05 for s in (0.3, 0.5, 0.7)])  # mean over the two seeds
    dense = [ln for ln in ax.get_lines() if ln.get_label() == "dense (all sensors)"]
    assert len(dense) == 1 and np.allclose(dense[0].get_ydata(), 4.5)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "dense (all sensors)" in legend and "qr (2 seeds)" in legend
    assert "target=all" in ax.get_title()
    # the error bars are +- std over seeds (0.05 here)
    seg = series["random (2 seeds)"].lines[2][0].get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(0.1)
    out = tmp_path / "tradeoff.png"
    fig.savefig(out, dpi=70)
    _png_ok(out)


def test_tradeoff_panels_filters_and_errors(tmp_path):
    rows = _rows() + [dict(r, target="kept") for r in _rows()]
    fig, axes = plot_tradeoff(rows, metric="rmse")
    assert len(axes) == 2 and axes[0].get_ylabel() == "test RMSE"
    fig, axes = plot_tradeoff(rows, target="kept")
    assert len(axes) == 1 and "target=kept" in axes[0].get_title()
    with pytest.raises(ValueError, match="no rows left"):
        plot_tradeoff(rows, dataset="pems-bay")
    with pytest.raises(ValueError, match="lacks the key"):
        plot_tradeoff([{"selector": "qr", "sparsity": 0.5}])
    with pytest.raises(FileNotFoundError, match="sparsity_tradeoff.py"):
        plot_tradeoff(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="'rows'"):
        load_tradeoff_rows({"data": []})
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="combinations"):
        plot_tradeoff(rows, ax=ax)


def test_region_map_colours_kept_sensors_by_region():
    from dynst_pyg.selection.constraints import SelectionConstraints
    from dynst_pyg.viz import plot_region_map

    ds = _grid_dataset()
    regions = ["west" if i % 4 < 2 else "east" for i in range(16)]
    c = SelectionConstraints(regions=regions, min_per_region=1)
    mask = SensorMask.from_indices([0, 1, 2, 7], 16, meta={"constraints": c.to_dict()})
    fig, ax = plot_region_map(ds, mask)  # regions from the mask's constraints
    kept = next(a for a in ax.collections if a.get_gid() == GID_KEPT)
    colours = [tuple(fc) for fc in kept.get_facecolors()]
    assert colours[0] == colours[1] != colours[2] == colours[3]  # 0, 1 west; 2, 7 east
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["west (2/8)", "east (2/8)", "pruned (12)"]
    with pytest.raises(ValueError, match="'regions' is required"):
        plot_region_map(ds, SensorMask.from_indices([0], 16))
    with pytest.raises(ValueError, match="one label per sensor"):
        plot_region_map(ds, mask, regions=["a"])
    with pytest.raises(TypeError, match="sets 'legend'"):
        plot_region_map(ds, mask, legend=True)


def test_maps_refuse_a_mask_of_another_network():
    from dynst_pyg.selection.constraints import SelectionConstraints
    from dynst_pyg.viz import plot_region_map

    ds = _grid_dataset()  # sensor ids "0" .. "15"
    ids = [str(i) for i in range(16)]
    other = ids[:3] + ["a17"] + ids[4:]
    foreign = SensorMask.from_indices([0, 1, 2], 16, sensor_ids=other)
    msg = r"'mask' belongs to another network: sensor 3 is 'a17' in the mask, '3' in the data"
    with pytest.raises(ValueError, match=msg):
        plot_sensor_map(ds, foreign)
    regions = ["west" if i % 4 < 2 else "east" for i in range(16)]
    with pytest.raises(ValueError, match=msg):
        plot_region_map(ds, foreign, regions=SelectionConstraints(regions=regions))
    open_before = len(plt.get_fignums())
    with pytest.raises(ValueError, match=msg):
        plot_mask_comparison(ds, SensorMask.from_indices([0], 16), foreign)
    assert len(plt.get_fignums()) == open_before  # refused before any figure was made
    from torch_geometric.data import Data

    data = Data(pos=ds.pos, edge_index=ds.edge_index, num_nodes=16, sensor_id=list(ids))
    with pytest.raises(ValueError, match=msg):
        plot_sensor_map(data, foreign)
    # the same ids, a mask without ids, or coordinates without ids: drawn
    own = SensorMask.from_indices([0, 1, 2], 16, sensor_ids=ids)
    for net, m in ((ds, own), (data, own), (ds, SensorMask.from_indices([0, 1, 2], 16)), (ds.pos, foreign)):
        _, ax = plot_sensor_map(net, m)
        assert len(_artist(ax, GID_KEPT).get_offsets()) == 3


def test_importing_viz_selects_no_backend():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
    code = ("import sys, matplotlib\n"
            "before = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
            "import dynst_pyg.viz, dynst_pyg.viz.maps, dynst_pyg.viz.compare, dynst_pyg.viz.tradeoff\n"
            "after = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
            "print(before is after or before == after, 'matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]  # backend untouched, pyplot not even imported
