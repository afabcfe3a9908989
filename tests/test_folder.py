"""Tests for dynst_pyg.datasets.folder.load_folder (the user's own data as plain files)."""
from __future__ import annotations

import json
import re
import math
import shutil
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynst_pyg.data import prepare
from dynst_pyg.datasets.folder import FolderFormatError, FolderNotice, load_folder

EXAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "example"


def test_example_folder_loads_exactly():
    ds = load_folder(EXAMPLE)
    assert ds.name == "example" and ds.sensor_id == ["S1", "S2", "S3", "S4", "S5", "S6"]
    assert ds.series.shape == (300, 6, 1)
    assert ds.interval_minutes == 5 and ds.start == datetime(2024, 3, 4) and ds.null_value == 0.0
    first = EXAMPLE.joinpath("readings.csv").read_text().splitlines()[1].split(",")
    assert ds.series[0, :, 0].tolist() == pytest.approx([float(v) for v in first[1:]])
    assert int((~ds.null_mask()).sum()) == 6  # the six empty cells, stored as null_value
    # edges: two directions per road, Gaussian kernel of the distances, sigma = their median (980 m)
    d = np.array([1050, 1050, 980, 980, 830, 830, 900, 900, 1010, 1010], dtype=np.float64)
    assert ds.edge_index[:, :2].tolist() == [[0, 1], [1, 0]] and ds.num_edges == 10
    assert ds.edge_weight.tolist() == pytest.approx(np.exp(-(d / 980.0) ** 2).tolist(), rel=1e-6)
    assert ds.pos[0].tolist() == pytest.approx([10.18, 56.15])  # (lon, lat)
    splits = prepare(ds, t_in=12, t_out=3)  # the window pipeline runs on it
    assert splits.train[0][0].shape == (12, 6, 1)


def test_example_folder_is_what_its_script_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("readings.csv", "edges.csv", "locations.csv", "dataset.json"):
        assert (tmp_path / name).read_text() == (EXAMPLE / name).read_text(), name


def write_folder(root: Path, readings: str, edges: str = "from,to\nA,B\n", locations=None, config=None,
                 readings_name="readings.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / readings_name).write_text(readings)
    if edges is not None:
        (root / "edges.csv").write_text(edges)
    if locations is not None:
        (root / "locations.csv").write_text(locations)
    if config is not None:
        (root / "dataset.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return root


GOOD = "time,A,B\n2024-01-01 00:00,1,2\n2024-01-01 00:10,3,4\n2024-01-01 00:20,5,6\n"


def test_small_cases_exact(tmp_path):
    ds = load_folder(write_folder(tmp_path / "a", GOOD, "from,to,weight\nA,B,0.5\nB,B,2\n"))
    assert ds.series[:, :, 0].tolist() == [[1, 2], [3, 4], [5, 6]]
    assert ds.interval_minutes == 10 and ds.name == "a" and ds.null_value is None and ds.pos is None
    assert ds.edge_index.tolist() == [[0, 1], [1, 1]] and ds.edge_weight.tolist() == [0.5, 2.0]
    # step numbers instead of date-times; interval from dataset.json; named time column anywhere
    steps = "A,step,B\n1,0,2\n3,1,4\n5,2,6\n"
    ds = load_folder(write_folder(tmp_path / "b", steps, "from,to\nB,A\n",
                                  config={"interval_minutes": 15, "time_column": "step", "name": "mine"}))
    assert ds.sensor_id == ["A", "B"] and ds.series[1, :, 0].tolist() == [3, 4]
    assert ds.interval_minutes == 15 and ds.start is None and ds.name == "mine"
    assert ds.edge_weight.tolist() == [1.0]
    # equal distances: each is the median, weight exp(-1)
    ds = load_folder(write_folder(tmp_path / "c", GOOD, "from,to,distance\nA,B,300\nB,A,300\n",
                                  locations="sensor_id,lon,lat\nB,10.5,50.25\nA,-3,40\n"))
    assert ds.edge_weight.tolist() == pytest.approx([math.exp(-1)] * 2) and ds.pos.tolist() == [[-3.0, 40.0],
                                                                                                [10.5, 50.25]]


def test_npz_and_missing_readings(tmp_path):
    root = tmp_path / "npz"
    root.mkdir()
    values = np.arange(12, dtype=np.float64).reshape(3, 2, 2)
    values[1, 0, 1] = np.nan
    np.savez(root / "readings.npz", readings=values, sensor_id=np.array(["A", "B"]),
             time=np.array(["2024-01-01T00:00", "2024-01-01T00:05", "2024-01-01T00:10"], dtype="datetime64[m]"))
    (root / "edges.csv").write_text("from,to\nA,B\n")
    ds = load_folder(root)                      # NaN is a missing reading
    assert ds.series.shape == (3, 2, 2) and bool(ds.series[1, 0, 1].isnan()) and ds.interval_minutes == 5
    assert int((~ds.null_mask()).sum()) == 1 and not bool(ds.null_mask()[1, 0, 1])
    (root / "dataset.json").write_text('{"null_value": 0}')   # and so is the marker: value 0 at [0, 0, 0]
    ds = load_folder(root)
    assert int((~ds.null_mask()).sum()) == 2 and not bool(ds.null_mask()[0, 0, 0])


def test_parquet_readings(tmp_path):
    import importlib.util

    import pandas as pd

    root = tmp_path / "pq"
    root.mkdir()
    (root / "edges.csv").write_text("from,to\nA,B\n")
    if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
        pytest.fail("this test needs pyarrow (part of the test extra: pip install -e '.[test]')", pytrace=False)
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=4, freq="5min"), "A": [1.0, 2, 3, 4],
                          "B": [5.0, 6, None, 8]})
    frame.to_parquet(root / "readings.parquet")
    ds = load_folder(root)
    assert torch.equal(ds.null_mask()[:, :, 0], torch.tensor([[True, True], [True, True], [True, False],
                                                              [True, True]]))
    assert torch.nan_to_num(ds.series[:, :, 0]).tolist() == [[1, 5], [2, 6], [3, 0], [4, 8]]
    assert ds.interval_minutes == 5


# one line per malformed file or column: (files, expected message)
BAD = [
    (dict(readings=GOOD.replace("3,4", "3,x")), r"readings.csv: line 3, column 'B': 'x' is not a number"),
    (dict(readings=GOOD.replace("3,4", "3,inf")), r"readings.csv: line 3, column 'B': infinite reading"),
    (dict(readings=GOOD.replace(",3,4", ",3")), r"readings.csv: line 3: 2 fields, expected 3 like the header"),
    (dict(readings="time,A,A\n0,1,2\n"), r"readings.csv: columns 2 and 3 are both named 'A'"),
    (dict(readings="time,,B\n0,1,2\n"), r"readings.csv: column 2 has no name"),
    (dict(readings="time\n0\n"), r"readings.csv: no sensor columns"),
    (dict(readings="time,A,B\n"), r"readings.csv: no data rows"),
    (dict(readings=""), r"readings.csv: empty file"),
    (dict(readings=GOOD.replace("00:20", "00:25")),
     r"readings.csv: line 4: time '2024-01-01 00:25' is 15 minutes after the previous row, expected 10"),
    (dict(readings=GOOD.replace("2024-01-01 00:10", "soon")), r"readings.csv: line 3, time column: 'soon' is not"),
    (dict(readings="t,A\n0,1\n2,1\n1,1\n"), r"readings.csv: line 4: time '1' does not increase"),
    (dict(edges=None), r"edges.csv: missing; expected a CSV with columns from,to"),
    (dict(edges="from,to\nA,C\n"), r"edges.csv: line 2, column 'to': unknown sensor 'C'"),
    (dict(edges="source,to\nA,B\n"), r"edges.csv: line 1: unknown column 'source'; expected columns from,to"),
    (dict(edges="from\nA\n"), r"edges.csv: line 1: no column 'to'"),
    (dict(edges="from,to,weight,distance\nA,B,1,2\n"), r"edges.csv: line 1: both 'weight' and 'distance'"),
    (dict(edges="from,to,weight\nA,B,-1\n"), r"edges.csv: line 2, column 'weight': '-1'; expected a non-negative"),
    (dict(edges="from,to,distance\nA,B,far\n"), r"edges.csv: line 2, column 'distance': 'far' is not a number"),
    (dict(edges="from,to\nA,B\nB,A\nA,B\n"), r"edges.csv: line 4: repeats the edge A -> B of line 2"),
    (dict(edges="from,to\nA,B,1\n"), r"edges.csv: line 2: 3 fields, expected 2"),
    (dict(locations="sensor_id,lat,lon\nA,95,1\nB,1,1\n"), r"locations.csv: line 2, column 'lat': 95 is outside"),
    (dict(locations="sensor_id,lat,lon\nA,1,1\n"), r"locations.csv: no row for sensor 'B'"),
    (dict(locations="sensor_id,lat,lon\nA,1,1\nA,1,1\n"), r"locations.csv: line 3: sensor 'A' is listed twice"),
    (dict(locations="sensor_id,lat\nA,1\n"), r"locations.csv: line 1: no column 'lon'"),
    (dict(config="{oops"), r"dataset.json: not valid JSON"),
    (dict(config={"interval": 5}), r"dataset.json: unknown key\(s\) \['interval'\]; expected keys among"),
    (dict(config={"interval_minutes": 0}), r"dataset.json: \"interval_minutes\" must be a positive integer"),
    (dict(config={"null_value": "x"}), r"dataset.json: \"null_value\" must be a finite number"),
    (dict(config={"interval_minutes": 5}),
     r"readings.csv: line 3: time '2024-01-01 00:10' is 10 minutes after the previous row, expected 5 \(configured"),
    (dict(config={"time_column": "when"}), r"readings.csv: no column 'when'"),
]


@pytest.mark.parametrize("files, message", BAD, ids=[m[:40] for _, m in BAD])
def test_malformed_files_give_one_clear_line(tmp_path, files, message):
    kw = dict(readings=GOOD, edges="from,to\nA,B\n")
    kw.update(files)
    root = write_folder(tmp_path / "d", **kw)
    with pytest.raises(FolderFormatError, match=message) as info:
        load_folder(root)
    assert "\n" not in str(info.value)


def test_folder_level_errors(tmp_path):
    with pytest.raises(FolderFormatError, match="not a folder"):
        load_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderFormatError, match="no readings file; expected one of readings.csv"):
        load_folder(tmp_path / "empty")
    root = write_folder(tmp_path / "two", GOOD)
    shutil.copy(root / "readings.csv", root / "readings.parquet")
    with pytest.raises(FolderFormatError, match="several readings files"):
        load_folder(root)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(2, 12), st.integers(1, 30), st.data())
def test_written_folder_round_trips(n, steps, interval, data):
    """Any regular table written as the documented files loads back to the same dataset."""
    import tempfile

    values = data.draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=n * steps,
                                max_size=n * steps))
    series = np.array(values, dtype=np.float32).reshape(steps, n)
    ids = [f"s{i}" for i in range(n)]
    pairs = sorted(set(data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=8))))
    dist = [float(i + 1) for i in range(len(pairs))]
    lines = ["time," + ",".join(ids)]
    for t in range(steps):
        stamp = datetime(2024, 5, 1) + t * __import__("datetime").timedelta(minutes=interval)
        lines.append(stamp.isoformat(sep=" ") + "," + ",".join(repr(float(v)) for v in series[t]))
    edges = "from,to,distance\n" + "".join(f"s{a},s{b},{d}\n" for (a, b), d in zip(pairs, dist))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FolderNotice)  # long edges dropped by the kernel are said in a notice
        ds = load_folder(write_folder(Path(tmp), "\n".join(lines) + "\n", edges))
    assert ds.sensor_id == ids and torch.equal(ds.series[:, :, 0], torch.from_numpy(series))
    assert ds.interval_minutes == (interval if steps > 1 else 5)
    # the documented kernel: sigma = median distance, weights below 0.1 dropped
    sigma = float(np.median(dist)) if dist else 1.0
    w = [math.exp(-(d / sigma) ** 2) for d in dist]
    assert ds.edge_index.t().tolist() == [list(p) for p, x in zip(pairs, w) if x >= 0.1]
    assert ds.edge_weight.tolist() == pytest.approx([x for x in w if x >= 0.1], rel=1e-6)


# ------------------------------------------------------------------ the distance kernel (issue 24 item 3, 23 item 4)
def test_example_folder_weights_and_supports_are_not_trivial():
    """Under the old kernel (sigma = std of the distances, 79 m) every weight of the example underflowed to 0,
    so the model's diffusion supports were all-zero matrices."""
    from dynst_pyg.models.supports import transition_supports

    ds = load_folder(EXAMPLE)
    w = ds.edge_weight
    assert w.numel() == 10 and bool((w > 0.2).all()) and bool((w < 0.6).all())
    assert float(w.max() - w.min()) > 0.1  # spread: the 830 m road weighs more than the 1050 m one
    fwd, bwd = transition_supports(ds.edge_index, ds.edge_weight, ds.num_nodes)
    for s in (fwd, bwd):
        assert torch.allclose(s.sum(0), torch.ones(6))  # every sensor has neighbours; columns are distributions
    col = fwd[:, 2][fwd[:, 2] > 0]  # S3 has three neighbours at 980, 830 and 1010 m: unequal shares
    assert col.numel() == 3 and float(col.max() - col.min()) > 0.05


def test_kernel_is_scale_free_and_survives_one_huge_distance(tmp_path):
    metres = load_folder(write_folder(tmp_path / "m", GOOD, "from,to,distance\nA,B,900\nB,A,1100\nA,A,1000\n"))
    km = load_folder(write_folder(tmp_path / "k", GOOD, "from,to,distance\nA,B,0.9\nB,A,1.1\nA,A,1.0\n"))
    assert metres.edge_weight.tolist() == pytest.approx(km.edge_weight.tolist(), rel=1e-6)
    assert metres.edge_weight.tolist() == pytest.approx([math.exp(-0.81), math.exp(-1.21), math.exp(-1)], rel=1e-6)
    # one huge distance: dropped with a notice, the other weights keep their spread (the std kernel made them ~1)
    with pytest.warns(FolderNotice, match=r"edges.csv: dropped 1 of 4 edges whose Gaussian weight .* below 0.1.* "
                                          r"line 5 \(B -> B, distance 1e\+07\)"):
        ds = load_folder(write_folder(tmp_path / "h", GOOD, "from,to,distance\nA,B,900\nB,A,1100\nA,A,1000\n"
                                                            "B,B,10000000\n"))
    assert ds.edge_index.tolist() == [[0, 1, 0], [1, 0, 0]]  # sigma = median of the four = 1050
    assert ds.edge_weight.tolist() == pytest.approx(np.exp(-(np.array([900, 1100, 1000]) / 1050) ** 2).tolist(),
                                                    rel=1e-6)
    assert len(ds.meta["notices"]) == 1 and "dropped 1 of 4" in ds.meta["notices"][0]
    # weight_threshold=0 keeps every edge
    ds = load_folder(tmp_path / "h", weight_threshold=0)
    assert ds.num_edges == 4 and ds.edge_weight[3] == 0.0


def test_degenerate_weights_are_said_or_refused(tmp_path):
    with pytest.warns(FolderNotice, match=r"edges.csv: distance kernel: all 2 weights are above 0.999"):
        ds = load_folder(write_folder(tmp_path / "z", GOOD, "from,to,distance\nA,B,0\nB,A,0\n"))
    assert ds.edge_weight.tolist() == [1.0, 1.0]
    with pytest.raises(FolderFormatError, match=r"edges.csv: every weight is 0, so the graph would have no effect"):
        load_folder(write_folder(tmp_path / "w", GOOD, "from,to,weight\nA,B,0\nB,A,0\n"))
    with pytest.raises(FolderFormatError, match=r"edges.csv: distance kernel .*no edge is left at "
                                                r"weight_threshold=0.9; lower weight_threshold"):
        load_folder(write_folder(tmp_path / "t", GOOD, "from,to,distance\nA,B,1\nB,A,2\n"), weight_threshold=0.9)
    with pytest.raises(ValueError, match=r"`weight_threshold` must be a number in \[0, 1\), got 1.5"):
        load_folder(tmp_path / "t", weight_threshold=1.5)


def test_shared_kernel_std_mode_keeps_the_loaders_weights_and_warns_when_degenerate():
    from dynst_pyg.datasets import gaussian_kernel_edges
    from dynst_pyg.datasets.graph_build import gaussian_kernel

    d = np.array([100.0, 300.0, 5000.0])
    k = gaussian_kernel(d, scale="std", threshold=0.1)  # DCRNN: sample std, as the PEMS/Aarhus loaders had it
    assert k.sigma == pytest.approx(float(np.std(d, ddof=1))) and k.keep.tolist() == [True, True, False]
    assert k.weight.tolist() == pytest.approx(np.exp(-(d / k.sigma) ** 2).tolist())
    # nearly equal lengths: the std kernel underflows, the median kernel does not
    near = np.array([830.0, 900.0, 980.0, 1010.0, 1050.0])
    assert "no edge is left" in gaussian_kernel(near, scale="std").problem
    med = gaussian_kernel(near)
    assert med.problem is None and med.keep.all() and med.weight.min() > 0.3
    with pytest.warns(UserWarning, match=r"Gaussian-kernel edge weights .*no edge is left"):
        ei, ew = gaussian_kernel_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], near, 5)
    assert ei.shape == (2, 0)
    ei, ew = gaussian_kernel_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], near, 5, scale="median")
    assert ei.shape == (2, 10) and float(ew.min()) > 0.3
    # equal distances: sigma undefined for std -> weight 1 (it used to be exp(-d^2) with sigma = 1)
    with pytest.warns(UserWarning, match="above 0.999"):
        ei, ew = gaussian_kernel_edges([0], [1], [300.0], 2)
    assert ew.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="`scale` must be 'median', 'std' or a positive number, got 'mean'"):
        gaussian_kernel(d, scale="mean")


# ------------------------------------------------------------------ coordinates (issue 24 item 2)
def test_locations_in_degrees_any_spelling_or_planar_metres(tmp_path):
    ds = load_folder(write_folder(tmp_path / "deg", GOOD, locations="Sensor_ID,Latitude,LONGITUDE\nA,56.1,10.2\n"
                                                                    "B,56.2,10.3\n"))
    assert ds.pos.flatten().tolist() == pytest.approx([10.2, 56.1, 10.3, 56.2]) and ds.meta["coordinates"] == "lonlat"
    ds = load_folder(write_folder(tmp_path / "lng", GOOD, locations="sensor_id,lng,lat\nA,10.2,56.1\nB,10.3,56.2\n"))
    assert ds.pos.flatten().tolist() == pytest.approx([10.2, 56.1, 10.3, 56.2])
    # UTM zone 32N metres: stored as (x, y) metres, said in meta
    ds = load_folder(write_folder(tmp_path / "utm", GOOD, locations="sensor_id,x,y\nA,575120.5,6222340\n"
                                                                    "B,576000,6223000.25\n"))
    assert ds.meta["coordinates"] == "xy"
    assert ds.pos.double().flatten().tolist() == pytest.approx([575120.5, 6222340.0, 576000.0, 6223000.25], abs=0.5)
    assert "coordinates" not in load_folder(write_folder(tmp_path / "none", GOOD)).meta
    assert load_folder(EXAMPLE).meta["coordinates"] == "lonlat"


LOCATION_ERRORS = [
    ("sensor_id,lat,lon,x,y\nA,1,1,1,1\nB,1,1,1,1\n", r"line 1: both degree \(lat/lon\) and planar \(x/y\) columns"),
    ("sensor_id,x\nA,1\nB,1\n", r"line 1: no column 'y'; expected columns sensor_id,lat,lon .* or sensor_id,x,y"),
    ("sensor_id,latitude,lon,lat\nA,1,1,1\n", r"line 1: columns 'latitude' and 'lat' are the same coordinate"),
    ("sensor_id,lat,lon,height\nA,1,1,1\n", r"line 1: unknown column 'height'"),
    ("sensor_id,lat,lon\nA,6222340,575120\nB,1,1\n",
     r"line 2, column 'lat': 6.22234e\+06 is outside \[-90, 90\] degrees; planar coordinates in metres .* columns x,y"),
    ("sensor_id,x,y\nA,1,inf\nB,1,1\n", r"line 2, column 'y': 'inf'; expected a finite number of metres"),
    ("sensor_id,x,y\nA,1,east\nB,1,1\n", r"line 2, column 'y': 'east' is not a number"),
    ("sensor_id,X,Y\nA,1,1\n", r"no row for sensor 'B'"),
]


@pytest.mark.parametrize("locations, message", LOCATION_ERRORS, ids=[m[:30] for _, m in LOCATION_ERRORS])
def test_bad_locations_give_one_clear_line(tmp_path, locations, message):
    root = write_folder(tmp_path / "l", GOOD, locations=locations)
    with pytest.raises(FolderFormatError, match=r"locations.csv: " + message) as info:
        load_folder(root)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ graphs from coordinates (issue 24 item 1)
THREE = "time,A,B,C\n2024-01-01 00:00,1,2,3\n2024-01-01 00:10,3,4,5\n2024-01-01 00:20,5,6,7\n"
LINE_XY = "sensor_id,x,y\nA,500000,6000000\nB,501000,6000000\nC,502500,6000000\n"  # 1 km and 1.5 km apart


def test_no_edges_file_builds_a_knn_graph_from_coordinates_and_says_so(tmp_path):
    root = write_folder(tmp_path / "knn", THREE, edges=None, locations=LINE_XY)
    with pytest.warns(FolderNotice, match=r"locations.csv: built the graph knn:2 from the coordinates \(no edges.csv\)"
                                          r": 6 directed edges between 3 sensors .*sigma = 1.5 km \(the median edge "
                                          r"length\)") as record:
        ds = load_folder(root)  # default knn:8, at most N - 1 = 2
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert ds.edge_index.tolist() == [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]
    d = np.array([1.0, 2.5, 1.0, 1.5, 2.5, 1.5])  # km
    assert ds.edge_weight.tolist() == pytest.approx(np.exp(-(d / 1.5) ** 2).tolist(), rel=1e-6)
    assert ds.meta["graph"] == "knn:2" and ds.meta["graph_source"] == "2 nearest neighbours (built from locations.csv)"
    assert ds.meta["notices"] == [str(record[0].message)]
    # knn:1 from dataset.json: A-B and B-C (C's nearest is B), both directions
    root = write_folder(tmp_path / "k1", THREE, edges=None, locations=LINE_XY, config={"graph": "knn:1"})
    with pytest.warns(FolderNotice, match=r"built the graph knn:1 from the coordinates \(.*dataset.json: \"graph\""):
        ds = load_folder(root)
    assert ds.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]


def test_radius_graph_in_km_for_metres_and_degrees(tmp_path):
    root = write_folder(tmp_path / "r", THREE, edges=None, locations=LINE_XY, config={"graph": "radius:1.2"})
    with pytest.warns(FolderNotice, match=r"every pair at most 1.2 km apart; 1 sensor\(s\) without a neighbour"):
        ds = load_folder(root)
    assert ds.edge_index.tolist() == [[0, 1], [1, 0]] and ds.edge_weight.tolist() == pytest.approx([math.exp(-1)] * 2)
    with pytest.warns(FolderNotice, match="radius:2"):  # the argument overrides dataset.json
        ds = load_folder(root, graph="radius:2")
    assert ds.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]] and ds.meta["graph"] == "radius:2"
    # degrees: 0.01 deg of latitude = 1.112 km (great circle); 0.01 deg of longitude at 60 N = 0.556 km
    deg = "sensor_id,lat,lon\nA,60.00,10.00\nB,60.01,10.00\nC,60.00,10.01\n"
    root = write_folder(tmp_path / "deg", THREE, edges=None, locations=deg)
    with pytest.warns(FolderNotice):
        ds = load_folder(root, graph="radius:1.0")
    assert ds.edge_index.tolist() == [[0, 2], [2, 0]]
    with pytest.warns(FolderNotice):
        ds = load_folder(root, graph="radius:1.2")
    assert ds.edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]


def test_distances_are_great_circle_km_and_knn_is_exact():
    from dynst_pyg.datasets.graph_build import distances_km, knn_graph, radius_graph

    eq = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [179.5, 0.0], [-179.5, 0.0]])
    d = distances_km(eq, "lonlat", np.array([0, 0, 3]), np.array([1, 2, 4]))
    assert d.tolist() == pytest.approx([111.195, 111.195, 111.195], rel=1e-4)  # also across the date line
    assert distances_km(np.array([[0.0, 0.0], [3000.0, 4000.0]]), "xy", [0], [1]).tolist() == [5.0]
    rng = np.random.default_rng(0)
    for kind, pts in (("xy", rng.uniform(0, 20_000, (40, 2))),
                      ("lonlat", np.stack([rng.uniform(10, 10.5, 40), rng.uniform(56, 56.3, 40)], 1))):
        n = len(pts)
        full = distances_km(pts, kind, np.repeat(np.arange(n), n), np.tile(np.arange(n), n)).reshape(n, n)
        np.fill_diagonal(full, np.inf)
        s, t, km = knn_graph(pts, kind, 3)
        want = set()
        for i in range(n):
            for j in np.argsort(full[i])[:3]:
                want |= {(i, int(j)), (int(j), i)}
        assert set(zip(s.tolist(), t.tolist())) == want
        assert km.tolist() == pytest.approx(full[s, t].tolist())
        r = float(np.median(full[np.isfinite(full)]))
        s, t, km = radius_graph(pts, kind, r)
        assert set(zip(s.tolist(), t.tolist())) == set(zip(*np.nonzero(full <= r)))


GRAPH_SPEC_ERRORS = ["knn", "knn:0", "knn:2.5", "radius:-1", "radius:far", "star", "edges:3", 8]


@pytest.mark.parametrize("spec", GRAPH_SPEC_ERRORS)
def test_bad_graph_spec_names_the_value_and_the_accepted_forms(tmp_path, spec):
    root = write_folder(tmp_path / "g", THREE, edges=None, locations=LINE_XY)
    if isinstance(spec, str):
        with pytest.raises(ValueError, match=r"^graph: " + repr(spec) + r" is not a graph spec \(.*\); expected "
                                             r"'edges' .*'knn:K' .*or 'radius:KM'") as info:
            load_folder(root, graph=spec)
        assert not isinstance(info.value, FolderFormatError)
    (root / "dataset.json").write_text(json.dumps({"graph": spec}))
    with pytest.raises(FolderFormatError, match=r"dataset.json: \"graph\": " + repr(spec) + " is not a graph spec"):
        load_folder(root)


def test_graph_that_cannot_be_built_is_refused(tmp_path):
    root = write_folder(tmp_path / "g", THREE, edges=None, locations=LINE_XY)
    with pytest.raises(FolderFormatError, match=r"graph='knn:3': knn:3 needs more than 3 sensors and the readings "
                                                r"have 3; use knn:K with K <= 2"):
        load_folder(root, graph="knn:3")
    with pytest.raises(FolderFormatError, match=r"graph='radius:0.5': radius:0.5 links no two sensors \(the closest "
                                                r"two are 1 km apart\); use a larger radius or knn:K"):
        load_folder(root, graph="radius:0.5")
    with pytest.raises(FolderFormatError, match=r"edges.csv: missing; .* \(graph='edges' asks for it\)"):
        load_folder(root, graph="edges")
    bare = write_folder(tmp_path / "bare", THREE, edges=None)
    with pytest.raises(FolderFormatError, match=r"locations.csv: missing; the graph knn:2 \(graph='knn:2'\) is built "
                                                r"from the sensors' coordinates"):
        load_folder(bare, graph="knn:2")
    with pytest.raises(FolderFormatError, match=r"edges.csv: missing; expected .*, or a locations.csv to build"):
        load_folder(bare)


def test_graph_spec_replaces_an_existing_edges_file(tmp_path):
    with pytest.warns(FolderNotice, match=r"knn:1 .*; edges.csv is not used$"):
        ds = load_folder(write_folder(tmp_path / "g", THREE, edges="from,to\nA,C\n", locations=LINE_XY),
                         graph="knn:1")
    assert ds.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    ds = load_folder(tmp_path / "g")  # without a spec: edges.csv, silently
    assert ds.edge_index.tolist() == [[0], [2]] and ds.meta["graph"] == "edges" and ds.meta["notices"] == []


def test_edges_file_with_a_header_and_no_rows_is_a_notice(tmp_path):
    with pytest.warns(FolderNotice, match=r"edges.csv: a header and no edges, so the graph has none: graph-based "
                                          r"selectors \(degree, pagerank, betweenness\) have nothing to rank by"):
        ds = load_folder(write_folder(tmp_path / "e", GOOD, edges="from,to,distance\n\n"))
    assert ds.num_edges == 0


# ------------------------------------------------------------------ the time column (issue 24 items 5 and 6)
TIME_ERRORS = [
    # step numbers and no interval: refused, asking for the key (it used to become 5 minutes)
    ("step,A,B\n0,1,2\n1,3,4\n2,5,6\n", None,
     r"readings.csv: the time column holds step numbers \('0', '1', ...\), not date-times, so the time between rows "
     r"is unknown; add \"interval_minutes\" to .*dataset.json \(e.g. \{\"interval_minutes\": 60\} for hourly"),
    ("time,A,B\n2024-01-01 00:00,1,2\n", None,
     r"readings.csv: a single time stamp, so the time between rows is unknown"),
    # a duplicated row is called a duplicate (it used to be "0 minutes after the previous row")
    (GOOD.replace("00:20", "00:10"), None,
     r"readings.csv: duplicate timestamp '2024-01-01 00:10' at line 4 \(the previous row has the same time\)"),
    (GOOD.replace("00:10", "00:00"), None, r"readings.csv: duplicate timestamp '2024-01-01 00:00' at line 3"),
    (GOOD.replace("00:10", "00:00"), {"interval_minutes": 10}, r"duplicate timestamp '2024-01-01 00:00' at line 3"),
    (GOOD.replace("00:20", "00:05"), None,
     r"readings.csv: line 4: time '2024-01-01 00:05' is before the previous row \('2024-01-01 00:10'\)"),
    ("step,A\n0,1\n1,1\n1,1\n", {"interval_minutes": 60}, r"readings.csv: duplicate time step '1' at line 4"),
]


@pytest.mark.parametrize("readings, config, message", TIME_ERRORS, ids=[m[:40] for _, _, m in TIME_ERRORS])
def test_time_column_problems_are_named(tmp_path, readings, config, message):
    root = write_folder(tmp_path / "t", readings, config=config)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    with pytest.raises(FolderFormatError, match=message) as info:
        load_folder(root)
    assert "\n" not in str(info.value)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before  # the caller's files are left alone


def test_npz_without_time_needs_the_interval(tmp_path):
    root = tmp_path / "npz"
    root.mkdir()
    np.savez(root / "readings.npz", readings=np.ones((4, 2)), sensor_id=np.array(["A", "B"]))
    (root / "edges.csv").write_text("from,to\nA,B\n")
    with pytest.raises(FolderFormatError, match=r"readings.npz: no 'time' array, so the time between rows is unknown; "
                                                r"add \"interval_minutes\""):
        load_folder(root)
    (root / "dataset.json").write_text('{"interval_minutes": 60}')
    assert load_folder(root).interval_minutes == 60


# ------------------------------------------------------------------ null_value and empty sensors (issue 24 item 5)
def counts_folder(root: Path, **kw) -> Path:
    """Ten hourly steps of passenger counts at A, B, C; C counts nothing in the first 7 steps, B never."""
    rows = ["time,A,B,C"] + [f"2024-01-01 {t:02d}:00,{t % 3},0,{0 if t < 7 else 4}" for t in range(10)]
    return write_folder(root, "\n".join(rows) + "\n", **kw)


def test_null_value_marking_most_readings_is_said_with_counts(tmp_path):
    root = counts_folder(tmp_path / "c", edges="from,to\nA,B\nB,C\nC,A\n", config={"null_value": 0})
    with pytest.warns(FolderNotice) as record:
        ds = load_folder(root)
    lines = [str(r.message) for r in record]
    assert any(re.search(r"dataset.json: \"null_value\": 0 marks every reading equal to 0 as missing, and 70.0% of "
                         r"the readings of readings.csv are \(21 of 30 cells\); if 0 is a real reading \(a count, "
                         r"say\), remove \"null_value\"", m) for m in lines), lines
    empty = [m for m in lines if "have no reading" in m]
    assert len(empty) == 1 and re.search(
        r"readings.csv: 2 of 3 sensors have no reading in the first 70% of the steps \(rows 0..6, the training "
        r"split\): 'B', 'C'; training refuses them: drop them with drop_empty_sensors=True \(CLI: "
        r"--drop-empty-sensors\); note that dataset.json's \"null_value\": 0 marks .* 70.0% of the readings are",
        empty[0]), empty
    assert ds.num_nodes == 3 and "dropped_sensors" not in ds.meta
    with pytest.raises(ValueError, match="no reading in the training split"):
        prepare(ds, t_in=1, t_out=1)  # steps 0..6 are its training split too
    # without null_value the zeros are readings: nothing to say
    (root / "dataset.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FolderNotice)
        assert load_folder(root).observed.all()


def test_drop_empty_sensors_drops_them_with_their_edges_and_says_which(tmp_path):
    root = counts_folder(tmp_path / "c", edges="from,to,distance\nA,B,1\nB,C,1\nC,A,2\nA,C,2\nA,A,1\n",
                         config={"null_value": 0}, locations="sensor_id,x,y\nA,0,0\nC,1000,0\n")  # no row for B
    with pytest.warns(FolderNotice) as record:
        ds = load_folder(root, drop_empty_sensors=True)
    lines = [str(r.message) for r in record]
    assert any(re.search(r"readings.csv: dropped 2 of 3 sensors without a reading in the first 70% of the steps "
                         r"\(rows 0..6, the training split\) \(drop_empty_sensors=True\): 'B', 'C'", m) for m in lines)
    assert any("edges.csv: left out 4 of 5 edges, those of the dropped sensors" in m for m in lines)
    assert ds.sensor_id == ["A"] and ds.meta["dropped_sensors"] == ["B", "C"]
    assert ds.edge_index.tolist() == [[0], [0]] and ds.pos.tolist() == [[0.0, 0.0]]
    assert torch.equal(ds.series[:, 0, 0].isnan(), torch.tensor([t % 3 == 0 for t in range(10)]))
    prepare(ds, t_in=1, t_out=1)  # the training split is fine now
    # only B dropped when C has readings early; the graph is built on the kept sensors
    rows = ["time,A,B,C"] + [f"2024-01-01 {t:02d}:00,{t + 1},0,{t + 2}" for t in range(10)]
    root = write_folder(tmp_path / "k", "\n".join(rows) + "\n", edges=None, config={"null_value": 0},
                        locations="sensor_id,x,y\nA,0,0\nB,5,5\nC,1000,0\n")
    with pytest.warns(FolderNotice) as record:
        ds = load_folder(root, drop_empty_sensors=True)
    assert [str(r.message).split(": ", 1)[1][:26] for r in record] == ["dropped 1 of 3 sensors wit",
                                                                      "built the graph knn:1 from"]
    assert "2 directed edges between 2 sensors" in str(record[1].message)
    assert ds.sensor_id == ["A", "C"] and ds.edge_index.tolist() == [[0, 1], [1, 0]]
    assert ds.meta["dropped_sensors"] == ["B"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FolderNotice)
        ds = load_folder(tmp_path / "k", drop_empty_sensors=True, graph="knn:1")
    assert ds.meta["dropped_sensors"] == ["B"]
    # nothing to drop: an empty list, and no notice about it
    with warnings.catch_warnings():
        warnings.simplefilter("error", FolderNotice)
        assert load_folder(EXAMPLE, drop_empty_sensors=True).meta["dropped_sensors"] == []


def test_drop_empty_sensors_refuses_to_drop_everything(tmp_path):
    root = write_folder(tmp_path / "z", "time,A,B\n2024-01-01 00:00,0,0\n2024-01-01 01:00,0,0\n",
                        config={"null_value": 0})
    with pytest.raises(FolderFormatError, match=r"readings.csv: no sensor has a reading in the first 70% of the steps "
                                                r".*so none would be left; dataset.json's \"null_value\": 0 marks "
                                                r"every "
                                                r"reading equal to 0 as missing, and 100.0% of the readings are"):
        load_folder(root, drop_empty_sensors=True)
    with pytest.raises(ValueError, match="`drop_empty_sensors` must be True or False, got 'yes'"):
        load_folder(root, drop_empty_sensors="yes")


# ------------------------------------------------------------------ ids that lost their leading zeros (issue 24 item 6)
def test_ids_that_differ_by_leading_zeros_get_a_hint(tmp_path):
    readings = "time,007,0100,23\n2024-01-01 00:00,1,2,3\n2024-01-01 00:10,3,4,5\n2024-01-01 00:20,5,6,7\n"
    root = write_folder(tmp_path / "z", readings, edges="from,to\n007,0100\n0100,7\n")
    with pytest.raises(FolderFormatError, match=r"edges.csv: line 3, column 'to': unknown sensor '7' \(not a sensor "
                                                r"column of readings.csv\); readings.csv has '007', the same id up to "
                                                r"leading zeros: a spreadsheet .* \(as text\)$"):
        load_folder(root)
    (root / "edges.csv").write_text("from,to\n0023,007\n")  # the other way round: zeros added
    with pytest.raises(FolderFormatError,
                       match=r"line 2, column 'from': unknown sensor '0023' .*readings.csv has '23'"):
        load_folder(root)
    (root / "edges.csv").write_text("from,to\n8,007\n")  # no near match: no hint
    with pytest.raises(FolderFormatError, match=r"unknown sensor '8' \(not a sensor column of readings.csv\)$"):
        load_folder(root)
    (root / "edges.csv").write_text("from,to\n007,0100\n")
    (root / "locations.csv").write_text("sensor_id,lat,lon\n7,1,1\n")
    with pytest.raises(FolderFormatError, match=r"locations.csv: line 2, column 'sensor_id': unknown sensor '7' .*"
                                                r"readings.csv has '007'"):
        load_folder(root)


# ------------------------------------------------------------------ the format's README (issue 24 item 7)
def readme_folders(tmp_path: Path) -> dict:
    """The example folders of datasets/example/README.md, written from its code blocks."""
    text = (EXAMPLE / "README.md").read_text()
    out = {}
    for part in re.split(r"<!-- folder: (\w+) -->", text)[1:]:
        if part.isidentifier():
            name = part
            continue
        section = part.split("\n### ")[0].split("\n## ")[0]
        root = tmp_path / name
        root.mkdir()
        for fname, body in re.findall(r"`([\w.]+)`\n```\w*\n(.*?)```", section, flags=re.S):
            (root / fname).write_text(body)
        out[name] = root
    return out


def test_readme_examples_load_as_described(tmp_path):
    folders = readme_folders(tmp_path)
    assert sorted(folders) == ["bus", "road", "stations"]
    for kind in ("road", "stations", "bus"):
        assert (folders[kind] / "readings.csv").is_file() and (folders[kind] / "locations.csv").is_file()
    road = load_folder(folders["road"])
    assert road.meta["graph"] == "edges" and road.num_edges == 4 and road.meta["coordinates"] == "lonlat"
    assert int((~road.observed).sum()) == 1
    with pytest.warns(FolderNotice, match=r"built the graph radius:15 .*: 8 directed edges between 4 sensors "
                                          r"\(every pair at most 15 km apart\); .*great-circle distances, "
                                          r"sigma = 8.803 km"):
        st_ = load_folder(folders["stations"])
    assert not (folders["stations"] / "edges.csv").exists() and st_.meta["graph"] == "radius:15"
    with pytest.warns(FolderNotice, match="built the graph knn:1"):
        bus = load_folder(folders["bus"])
    assert bus.sensor_id == ["0101", "0102", "0205"] and bus.meta["coordinates"] == "xy"
    assert bus.interval_minutes == 15 and bus.observed.all() and bus.edge_index.tolist() == [[0, 1, 1, 2],
                                                                                            [1, 0, 2, 1]]
    (folders["bus"] / "dataset.json").write_text('{"name": "bus"}')  # without the interval: refused
    with pytest.raises(FolderFormatError, match=r"add \"interval_minutes\""):
        load_folder(folders["bus"])
    readme = (EXAMPLE / "README.md").read_text()
    for key in ("name", "interval_minutes", "null_value", "time_column", "graph"):  # every key has a row
        assert f"| `{key}` |" in readme


# ------------------------------------------------------------------ end to end (issue 24: "done when")
def planar_stations(root: Path, steps: int = 240, n: int = 8) -> Path:
    """Hourly readings of ``n`` stations on a planar grid (metres), no edges.csv."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 5000, (n, 2)) + [500000.0, 6200000.0]
    base = np.sin(np.arange(steps) * 2 * np.pi / 24)[:, None] * 10 + 50 + rng.normal(0, 1, (steps, n))
    rows = ["time," + ",".join(f"P{i:02d}" for i in range(n))]
    for t in range(steps):
        stamp = datetime(2024, 1, 1) + __import__("datetime").timedelta(hours=t)
        rows.append(stamp.strftime("%Y-%m-%d %H:%M") + "," + ",".join(f"{v:.2f}" for v in base[t]))
    locs = "sensor_id,x,y\n" + "".join(f"P{i:02d},{x:.1f},{y:.1f}\n" for i, (x, y) in enumerate(xy))
    return write_folder(root, "\n".join(rows) + "\n", edges=None, locations=locs)


def test_prune_runs_end_to_end_on_coordinates_without_edges(tmp_path, capsys):
    from dynst_pyg.cli import main

    root = planar_stations(tmp_path / "stations")
    text = (root / "readings.csv").read_text().splitlines()  # station P03 never reads (cells left empty)
    (root / "readings.csv").write_text("\n".join([text[0]] + [",".join(c if j != 4 else "" for j, c in
                                                                        enumerate(r.split(","))) for r in text[1:]])
                                       + "\n")
    out = tmp_path / "run"
    with pytest.warns(FolderNotice) as record:
        code = main(["prune", "--data", str(root), "--selector", "degree", "--epochs", "1", "--warmup-epochs", "1",
                     "--max-batches", "2", "--batch-size", "16", "--quiet", "--no-dense", "--device", "cpu",
                     "--graph", "knn:3", "--drop-empty-sensors", "--time-features", "--out", str(out)])
    assert code == 0
    assert any("dropped 1 of 8 sensors" in str(r.message) for r in record)
    assert any("built the graph knn:3" in str(r.message) for r in record)
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_nodes"] == 7 and m["num_kept"] == 4 and math.isfinite(m["test"]["mae"])
    assert m["spec"]["graph"] == "knn:3" and m["spec"]["drop_empty_sensors"] and m["spec"]["time_features"]
    assert m["dropped_sensors"] == ["P03"]
    report = (out / "report.md").read_text()
    assert "## Data" in report and "(drop_empty_sensors=True): 'P03'" in report and "built the graph knn:3" in report
    capsys.readouterr()
    with warnings.catch_warnings():  # evaluate rebuilds the same data (graph, dropped sensor, time inputs)
        warnings.simplefilter("ignore", FolderNotice)
        assert main(["evaluate", "--run", str(out), "--device", "cpu"]) == 0
    assert f"mae {m['test']['mae']:.3f}" in capsys.readouterr().out


# ------------------------------------------------------------------ the CLI flags (issue 24 items 1, 4, 5, 6)
def test_cli_flags_reach_the_loader_and_prepare(tmp_path, monkeypatch):
    import dynst_pyg.cli.pipeline as pipeline
    from dynst_pyg.cli import main
    from dynst_pyg.cli.spec import load_splits

    specs = []

    def fake_run_prune(spec, out, **kw):
        specs.append(spec)
        return {"processes": 1, "device": "cpu"}

    monkeypatch.setattr(pipeline, "run_prune", fake_run_prune)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "report.md").write_text("stub\n")
    root = planar_stations(tmp_path / "s", steps=200, n=4)
    assert main(["prune", "--data", str(root), "--graph", "radius:3", "--drop-empty-sensors", "--time-features",
                 "--selector", "dynst", "--out", str(tmp_path / "o")]) == 0
    assert main(["prune", "--data", str(root), "--out", str(tmp_path / "o")]) == 0
    spec, plain = specs
    assert (spec.graph, spec.drop_empty_sensors, spec.time_features) == ("radius:3", True, True)
    assert (plain.graph, plain.drop_empty_sensors, plain.time_features) == (None, False, None)  # None: auto
    spec.validate()
    assert spec.selector == "dynst-iterative"  # `--selector dynst` is the default DynST schedule
    with pytest.warns(FolderNotice, match="built the graph radius:3"):
        splits = load_splits(spec)
    assert splits.time_features and splits.in_features == 3  # reading + time of day + day of week
    assert splits.dataset.meta["graph"] == "radius:3" and splits.dataset.meta["dropped_sensors"] == []
    with pytest.warns(FolderNotice, match="built the graph knn:3"):
        assert load_splits(plain).time_features  # auto: the readings have timestamps
    with pytest.warns(FolderNotice, match="built the graph knn:3"):
        assert not load_splits(replace(plain, time_features=False)).time_features


def test_time_features_default_follows_the_timestamps(tmp_path):
    from dynst_pyg.cli.spec import RunSpec, uses_time_features
    auto, off, on = RunSpec(), RunSpec(time_features=False), RunSpec(time_features=True)
    assert [uses_time_features(s, True) for s in (auto, off, on)] == [True, False, True]
    assert [uses_time_features(s, False) for s in (auto, off, on)] == [False, False, True]
    assert uses_time_features(RunSpec(backbone="stid", time_features=False), False)  # STID reads them
    with pytest.raises(ValueError, match="time_features must be True, False or None"):
        RunSpec(time_features="yes", sparsity=0.5).validate()


def test_cli_refusals_name_the_value_and_the_choices(tmp_path, capsys):
    from dynst_pyg.cli import build_parser, main

    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--selector", "dynst-greedy"])
    err = capsys.readouterr().err
    assert "invalid choice: 'dynst-greedy'" in err and "'dynst'" in err and "'dynst-iterative'" in err
    from dynst_pyg.cli import RunSpec

    with pytest.raises(ValueError, match=r"unknown selector 'oracle'; expected one of dynst, dynst-oneshot, "
                                         r"dynst-iterative"):
        RunSpec(selector="oracle").validate()
    root = planar_stations(tmp_path / "s", steps=30, n=3)
    assert main(["datasets", "--data", str(root), "--graph", "knn:x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"error: graph: 'knn:x' is not a graph spec \(K must be a positive integer\); "
                                       r"expected 'edges' .*'knn:K' .*or 'radius:KM'", err[0]), err
    assert main(["prune", "--graph", "knn:4", "--out", str(tmp_path / "x")]) == 2  # the synthetic default: no folder
    assert "--graph and --drop-empty-sensors apply to --data DIR" in capsys.readouterr().err


def test_cli_prints_each_notice_on_one_line(tmp_path):
    import subprocess
    import sys

    root = planar_stations(tmp_path / "s", steps=30, n=3)
    env = {**__import__("os").environ, "PYTHONPATH": str(EXAMPLE.parents[1]), "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "dynst_pyg", "datasets", "--data", str(root)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [res.stderr.strip()] and re.fullmatch(
        r"dynst-pyg: note: .*locations.csv: built the graph knn:2 from the coordinates \(no edges.csv\): .*\n",
        res.stderr), res.stderr
    assert "sensors=3" in res.stdout
