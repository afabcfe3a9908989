"""The Aarhus loader on a tiny archive in the real format (written here), and on the real file."""

from __future__ import annotations

import io
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import dynst_pyg.datasets.aarhus as A
from dynst_pyg.data import prepare
from dynst_pyg.data import SPLIT_RATIOS
from dynst_pyg.datasets import ChecksumMismatch, DataFileMissing, dataset_summary, load_aarhus, load_dataset

HEADER = "status,avgMeasuredTime,avgSpeed,extID,medianMeasuredTime,TIMESTAMP,vehicleCount,_id,REPORT_ID\n"
META_HEADER = ("POINT_1_STREET,DURATION_IN_SEC,POINT_1_NAME,POINT_1_CITY,POINT_2_NAME,POINT_2_LNG,POINT_2_STREET,"
               "NDT_IN_KMH,POINT_2_POSTAL_CODE,POINT_2_COUNTRY,POINT_1_STREET_NUMBER,ORGANISATION,POINT_1_LAT,"
               "POINT_2_LAT,POINT_1_POSTAL_CODE,POINT_2_STREET_NUMBER,POINT_2_CITY,extID,ROAD_TYPE,POINT_1_LNG,"
               "REPORT_ID,POINT_1_COUNTRY,DISTANCE_IN_METERS,REPORT_NAME,RBA_ID,_id\n")
#: segment -> (point 1 name, (lon, lat), point 2 name, (lon, lat)); all on the equator
SEGMENTS = {"3": ("A", (0.0, 0.0), "B", (0.01, 0.0)),
            "20": ("B", (0.01, 0.0), "C", (0.03, 0.0)),
            "100": ("C", (0.03, 0.0), "B", (0.01, 0.0))}


def row(rid: str, stamp: str, speed: int, count: int, travel: int) -> str:
    return f"OK,{travel},{speed},1,{travel},{stamp},{count},7,{rid}\n"


def streams(extra: dict | None = None) -> dict[str, str]:
    files = {
        # sensor 3: steps 0, 1 and 3 (step 2 missing), a repeated identical row
        "3": [row("3", "2014-08-01T00:00:00", 50, 2, 70), row("3", "2014-08-01T00:05:00", 40, 1, 90),
              row("3", "2014-08-01T00:05:00", 40, 1, 90), row("3", "2014-08-01T00:15:00", 45, 0, 80)],
        # sensor 20: a speed-0 row (count 0, travel time 0) at step 1, the last step of the grid
        "20": [row("20", "2014-08-01T00:00:00", 30, 3, 240), row("20", "2014-08-01T00:05:00", 0, 0, 0),
               row("20", "2014-09-30T23:55:00", 35, 4, 200)],
        # sensor 100: one row on 2014-08-02 00:10 = step 288 + 2
        "100": [row("100", "2014-08-02T00:10:00", 60, 5, 120)],
    }
    out = {rid: HEADER + "".join(rows) for rid, rows in files.items()}
    out.update(extra or {})
    return out


def write_meta(d: Path, skip: tuple = ()) -> None:
    lines = [META_HEADER]
    for rid, (p1, (lon1, lat1), p2, (lon2, lat2)) in SEGMENTS.items():
        if rid in skip:
            continue
        lines.append(f"Vej,60,{p1},Aarhus,{p2},{lon2},Vej,50,8000,Denmark,1,COWI,{lat1},{lat2},8000,2,Aarhus,1,"
                     f"MAJOR_ROAD,{lon1},{rid},Denmark,900,AAR {p1} {p2},5,6\n")
    (d / "trafficMetaData.csv").write_text("".join(lines), encoding="utf-8")


def write_archive(root: Path, files: dict[str, str] | None = None, skip_meta: tuple = ()) -> Path:
    d = root / "aarhus"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "aarhus_traffic_aug_sep_2014.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("streams")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for rid, text in (files or streams()).items():
            data = text.encode()
            info = tarfile.TarInfo(f"streams/AarhusTrafficData{rid}.stream")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    write_meta(d, skip_meta)
    return path


def load_tiny(root: Path, **kw):
    kw.setdefault("cache_path", root / "cache")
    return load_aarhus(root, verify_checksums=False, **kw)


# ---------------------------------------------------------------- tiny archive
def test_tiny_archive_exact_arrays(tmp_path):
    write_archive(tmp_path)
    ds = load_tiny(tmp_path, features=("speed", "vehicle_count", "travel_time"), zero_speed="reading")
    assert ds.series.shape == (17568, 3, 3) and ds.sensor_id == ["3", "20", "100"]  # numeric order
    assert ds.start.isoformat() == "2014-08-01T00:00:00" and ds.interval_minutes == 5 and ds.name == "aarhus"
    assert ds.feature_names == ["speed", "vehicle_count", "travel_time"]
    obs = {(t, n) for t, n in ds.observed[..., 0].nonzero().tolist()}
    assert obs == {(0, 0), (1, 0), (3, 0), (0, 1), (1, 1), (17567, 1), (290, 2)}
    assert bool((ds.observed == ds.observed[..., :1]).all())  # a row is all features or none
    assert ds.series[0, 0].tolist() == [50, 2, 70] and ds.series[3, 0].tolist() == [45, 0, 80]
    assert ds.series[1, 1].tolist() == [0, 0, 0] and ds.series[17567, 1].tolist() == [35, 4, 200]
    assert ds.series[290, 2].tolist() == [60, 5, 120]
    assert ds.meta["rows"] == 7 and ds.meta["zero_speed_rows"] == 1
    assert ds.meta["row_share"] == pytest.approx(7 / (17568 * 3))


def test_zero_speed_row_is_missing_by_default(tmp_path):
    write_archive(tmp_path)
    ds = load_tiny(tmp_path, features=("speed", "travel_time"))
    assert not bool(ds.observed[1, 1].any()) and bool(torch.isnan(ds.series[1, 1]).all())
    assert int(ds.observed[..., 0].sum()) == 6 and ds.meta["zero_speed"] == "missing"
    assert ds.series.shape[-1] == 2 and ds.series[0, 1].tolist() == [30, 240]


def test_tiny_archive_graph_and_positions(tmp_path):
    write_archive(tmp_path)
    ds = load_tiny(tmp_path)
    # 3 = A->B, 20 = B->C, 100 = C->B: 3->20 and 100->20 (end at B), 20->100 (ends at C)
    assert sorted(map(tuple, ds.edge_index.t().tolist())) == [(0, 1), (1, 2), (2, 1)]
    assert torch.allclose(ds.pos, torch.tensor([[0.005, 0.0], [0.02, 0.0], [0.02, 0.0]]))
    w = {tuple(e): x for e, x in zip(ds.edge_index.t().tolist(), ds.edge_weight.tolist())}
    # midpoint distances (d, 0, 0): sigma = sample std = d / sqrt(3), so weights exp(-3), 1, 1
    assert w[(0, 1)] == pytest.approx(math.exp(-3), rel=1e-5)
    assert w[(1, 2)] == pytest.approx(1.0) and w[(2, 1)] == pytest.approx(1.0)


def test_haversine_on_the_equator():
    d = A._haversine_m(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]))
    assert float(d[0]) == pytest.approx(A._EARTH_RADIUS_M * math.pi / 180, rel=1e-9)


def test_extracted_folder_equals_archive(tmp_path):
    write_archive(tmp_path / "a")
    ds_a = load_tiny(tmp_path / "a", features=("speed", "vehicle_count"))
    folder = tmp_path / "b" / "aarhus" / "streams"
    folder.mkdir(parents=True)
    for rid, text in streams().items():
        (folder / f"AarhusTrafficData{rid}.stream").write_text(text)
    write_meta(tmp_path / "b" / "aarhus")
    ds_b = load_tiny(tmp_path / "b", features=("speed", "vehicle_count"))
    assert torch.equal(ds_a.series.nan_to_num(-1), ds_b.series.nan_to_num(-1))
    assert torch.equal(ds_a.edge_index, ds_b.edge_index) and ds_a.sensor_id == ds_b.sensor_id


def test_cache_is_used_and_keyed_on_the_archive(tmp_path, monkeypatch):
    write_archive(tmp_path)
    first = load_tiny(tmp_path)
    cached = list((tmp_path / "cache").glob("aarhus-*.npz"))
    assert len(cached) == 1

    def boom(items):
        raise AssertionError("parsed again although cached")

    monkeypatch.setattr(A, "_parse_streams", boom)
    again = load_tiny(tmp_path)
    assert torch.equal(first.series.nan_to_num(-1), again.series.nan_to_num(-1))
    # a changed archive has another checksum, so it is parsed again
    files = streams()
    files["100"] += row("100", "2014-08-02T00:15:00", 61, 5, 119)
    write_archive(tmp_path, files)
    with pytest.raises(AssertionError, match="parsed again"):
        load_tiny(tmp_path)
    monkeypatch.undo()
    assert float(load_tiny(tmp_path).series[291, 2, 0]) == 61.0
    # cache=False neither reads nor writes
    monkeypatch.setattr(A, "_parse_streams", boom)
    with pytest.raises(AssertionError):
        load_tiny(tmp_path, cache=False)


def test_unwritable_cache_only_warns(tmp_path):
    write_archive(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="could not write the Aarhus cache"):
        ds = load_tiny(tmp_path, cache_path=blocker / "sub")
    assert ds.num_nodes == 3


def test_bad_inputs_fail_clearly(tmp_path):
    write_archive(tmp_path / "m", skip_meta=("20",))
    with pytest.raises(ValueError, match=r"no row for REPORT_ID \['20'\]"):
        load_tiny(tmp_path / "m")
    write_archive(tmp_path / "c")
    with pytest.raises(ChecksumMismatch, match="expected sha256"):
        load_aarhus(tmp_path / "c", cache_path=tmp_path / "cache")
    write_archive(tmp_path / "g", streams({"7": HEADER + row("7", "2014-08-01T00:02:00", 5, 1, 9)}))
    with pytest.raises(ValueError, match="AarhusTrafficData7.stream: TIMESTAMP 2014-08-01T00:02:00"):
        load_tiny(tmp_path / "g")
    write_archive(tmp_path / "s", streams({"7": HEADER + row("7", "2014-08-01T00:05:30", 5, 1, 9)}))
    with pytest.raises(ValueError, match="TIMESTAMP 2014-08-01T00:05:30 is not on the 5-minute grid"):
        load_tiny(tmp_path / "s")
    write_archive(tmp_path / "o", streams({"7": HEADER + row("7", "2014-10-01T00:00:00", 5, 1, 9)}))
    with pytest.raises(ValueError, match="not on the 5-minute grid"):
        load_tiny(tmp_path / "o")
    dup = HEADER + row("7", "2014-08-01T00:00:00", 5, 1, 9) + row("7", "2014-08-01T00:00:00", 6, 1, 9)
    write_archive(tmp_path / "d", streams({"7": dup}))
    with pytest.raises(ValueError, match="two different rows for step 0"):
        load_tiny(tmp_path / "d")
    write_archive(tmp_path / "r", streams({"7": HEADER + row("8", "2014-08-01T00:00:00", 5, 1, 9)}))
    with pytest.raises(ValueError, match="REPORT_ID '8', but the file name says '7'"):
        load_tiny(tmp_path / "r")
    with pytest.raises(DataFileMissing, match="aarhus_traffic_aug_sep_2014.tar.gz"):
        load_aarhus(tmp_path / "empty")
    with pytest.raises(ValueError, match="features"):
        load_tiny(tmp_path / "c", features=("speed", "flow"))
    with pytest.raises(ValueError, match="zero_speed"):
        load_tiny(tmp_path / "c", zero_speed="drop")


def test_registry_passes_options_and_lists_aarhus(tmp_path, monkeypatch):
    write_archive(tmp_path)
    monkeypatch.setenv("DYNST_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("aarhus", root=tmp_path, features=("vehicle_count",), verify_checksums=False)
    assert ds.feature_names == ["vehicle_count"] and float(ds.series[0, 0, 0]) == 2.0
    assert SPLIT_RATIOS["aarhus"] == (0.7, 0.1, 0.2)
    rows = {r.name: r for r in dataset_summary(tmp_path, synthetic_nodes=20)}
    assert "MISMATCH" in rows["aarhus"].checksums and rows["aarhus"].status.startswith("error: checksum mismatch")
    assert (rows["aarhus"].sensors, rows["aarhus"].steps) == (449, 17568)


# ---------------------------------------------------------------- real file
@pytest.fixture(scope="module")
def aarhus_real():
    from conftest import require_data

    require_data("aarhus/aarhus_traffic_aug_sep_2014.tar.gz")
    require_data("aarhus/trafficMetaData.csv")
    return load_aarhus(zero_speed="reading")


@pytest.mark.data
@pytest.mark.slow
def test_real_aarhus_shape_graph_and_observed_share(aarhus_real):
    ds = aarhus_real
    assert (ds.num_steps, ds.num_nodes, ds.num_features) == (17568, 449, 1)
    assert ds.num_edges == 1654 and ds.meta["row_share"] == pytest.approx(0.905, abs=1e-3)
    assert ds.observed_share == pytest.approx(0.905, abs=1e-3)
    assert float(ds.observed.float().mean(0).min()) >= 0.806  # every segment reports >= 80.6 % of steps
    src, dst = ds.edge_index
    assert torch.bincount(src, minlength=449).min() >= 1 and torch.bincount(dst, minlength=449).min() >= 1
    assert 10.0 < float(ds.pos[:, 0].mean()) < 10.4 and 56.0 < float(ds.pos[:, 1].mean()) < 56.3  # Aarhus
    assert ds.meta["zero_speed_rows"] == 169731
    # the default treats the speed-0 rows as missing
    t0 = time.perf_counter()
    default = load_aarhus()
    assert time.perf_counter() - t0 < 2.0  # cached
    assert default.observed_share == pytest.approx(0.883, abs=1e-3)
    assert int(ds.observed.sum()) - int(default.observed.sum()) == 169731


@pytest.mark.data
@pytest.mark.slow
def test_real_aarhus_reference_numbers(aarhus_real):
    """The data card's numbers: speed, test = last 20 % of steps, every observed cell weighted alike."""
    from dynst_pyg.training.references import TimeOfDayAverage, reference_metrics
    from dynst_pyg.data import forward_fill
    from dynst_pyg.metrics import masked_mae

    ds = aarhus_real
    T = ds.num_steps
    t0 = int(0.8 * T)
    y = ds.series[t0:, :, 0].unsqueeze(0)  # one sample: the plain mean over observed cells
    carried = forward_fill(ds.series[..., 0])
    persistence = [float(masked_mae(carried[t0 - h:T - h].unsqueeze(0), y)) for h in (3, 6, 12)]
    assert persistence == pytest.approx([6.24, 7.48, 8.74], abs=0.005)
    sp = prepare(ds, t_in=12, t_out=12, ratios=SPLIT_RATIOS["aarhus"])
    ha = TimeOfDayAverage(sp)
    pred = ha.table[(torch.arange(t0, T) + ha.offset) % ha.slots][..., 0].unsqueeze(0)
    assert float(masked_mae(pred, y)) == pytest.approx(9.45, abs=0.005)
    # the package's own reference table (test windows, per-window averaging) lands close by
    ref = reference_metrics(sp, "test", horizons=(3, 6, 12))
    p = ref["persistence"]
    assert [p["mae_h3"], p["mae_h6"], p["mae_h12"]] == pytest.approx(persistence, abs=0.05)
    assert ref["time_of_day"]["mae"] == pytest.approx(9.45, abs=0.05)
