"""Block averages on a coarser grid: only observed cells enter a mean."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynst_pyg.data import SpatioTemporalDataset, resample_mean

NAN = float("nan")


def pair_graph() -> torch.Tensor:
    return torch.tensor([[0, 1], [1, 0]])


def test_mean_of_observed_cells_nan_for_empty_block_and_tail_dropped():
    # T = 7, N = 2, factor 3 -> 2 blocks; step 6 is a partial block and is dropped
    s = torch.tensor([[1.0, NAN], [2.0, NAN], [6.0, NAN],
                      [NAN, 4.0], [5.0, 8.0], [NAN, NAN],
                      [100.0, 100.0]])
    ds = SpatioTemporalDataset(s, pair_graph(), start=datetime(2014, 8, 1), interval_minutes=5, name="toy",
                               sensor_id=["a", "b"])
    out = resample_mean(ds, 3)
    assert out.num_steps == 2 and out.interval_minutes == 15
    assert out.series[0, 0, 0].item() == pytest.approx(3.0)          # (1 + 2 + 6) / 3
    assert math.isnan(out.series[0, 1, 0].item())                      # no reading in the block
    assert out.series[1, 0, 0].item() == pytest.approx(5.0)           # only the observed 5 counts
    assert out.series[1, 1, 0].item() == pytest.approx(6.0)           # (4 + 8) / 2, the gap is not a 0
    assert out.observed[..., 0].tolist() == [[True, False], [True, True]]
    assert out.sensor_id == ["a", "b"] and out.name == "toy" and out.start == datetime(2014, 8, 1)
    assert torch.equal(out.edge_index, ds.edge_index) and out.meta["resample_factor"] == 3
    assert resample_mean(out, 2).meta["resample_factor"] == 6


def test_null_value_cells_are_left_out_and_input_untouched():
    s = torch.tensor([[0.0], [4.0], [0.0], [0.0]])
    ds = SpatioTemporalDataset(s.expand(4, 2).clone(), pair_graph(), null_value=0.0)
    before = ds.series.clone()
    out = resample_mean(ds, 2)
    assert out.series[:, 0, 0].tolist()[0] == 4.0 and math.isnan(out.series[1, 0, 0].item())
    assert out.null_value is None
    assert torch.equal(ds.series.isnan(), before.isnan()) and torch.equal(ds.series.nan_to_num(), before.nan_to_num())


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, 9])
def test_bad_factor_is_refused(bad):
    ds = SpatioTemporalDataset(torch.ones(8, 2), pair_graph())
    with pytest.raises(ValueError, match="factor"):
        resample_mean(ds, bad)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 12), factor=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_matches_a_direct_loop_and_factor_one_is_identity(T, factor, seed):
    factor = min(factor, T)
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(T, 2, 2, generator=g) * 10
    obs = torch.rand(T, 2, 2, generator=g) > 0.4
    ds = SpatioTemporalDataset(s, pair_graph(), observed=obs)
    out = resample_mean(ds, factor)
    assert out.num_steps == T // factor
    for b in range(T // factor):
        for n in range(2):
            for f in range(2):
                cells = [s[t, n, f].item() for t in range(b * factor, (b + 1) * factor) if obs[t, n, f]]
                got = out.series[b, n, f].item()
                if cells:
                    assert got == pytest.approx(sum(cells) / len(cells), rel=1e-6)
                else:
                    assert math.isnan(got) and not out.observed[b, n, f]
    same = resample_mean(ds, 1)
    assert torch.equal(same.observed, ds.observed)
    assert torch.equal(same.series.nan_to_num(-1.0), ds.series.nan_to_num(-1.0))
