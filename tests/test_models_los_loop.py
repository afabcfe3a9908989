"""Accuracy on real data (issue 4): on Los-loop (207 METR-LA sensors), the small-profile dense
Graph WaveNet and DCRNN beat persistence and the time-of-day average on test MAE at horizons 3/6/12.

Slow (trains each model for a few epochs on CPU). Run alone with
``pytest tests/test_models_los_loop.py -s`` to see the numbers; deselect with ``-m "not slow"``.
Inputs are the normalised speed plus the time of day (day of week is dropped: the series covers
a single week, so test days have day-of-week values never seen in training).
"""

from __future__ import annotations

import time

import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.training.references import reference_metrics
from dynst_pyg.metrics import forecast_metrics, masked_mae
from dynst_pyg.models import DCRNN, GraphWaveNet

HORIZONS = (3, 6, 12)


def train_and_test(model, splits, epochs, lr, batch_size=64, seed=0, log=print):
    """Adam on masked MAE (raw scale, nulls excluded); returns test metrics of the best-val epoch."""
    ei, ew = splits.edge_index, splits.edge_weight
    scaler, nv = splits.scaler, splits.null_value
    feats = [0, 1]  # speed, time of day

    def predict(wd):
        model.eval()
        outs = []
        with torch.no_grad():
            for s in range(0, len(wd), 128):
                x, _ = wd.batch(torch.arange(s, min(s + 128, len(wd))))
                outs.append(scaler.inverse_transform(model(x[..., feats], ei, ew)))
        return torch.cat(outs)

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    _, y_val = splits.val.tensors()
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(splits.train), generator=g)
        for s in range(0, len(perm), batch_size):
            x, y = splits.train.batch(perm[s:s + batch_size])
            loss = masked_mae(scaler.inverse_transform(model(x[..., feats], ei, ew)), y, nv)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        val = float(masked_mae(predict(splits.val), y_val, nv))
        log(f"  epoch {epoch + 1}: train loss {loss.item():.3f}  val MAE {val:.3f}  ({time.perf_counter() - t0:.0f} s)")
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    _, y_test = splits.test.tensors()
    return forecast_metrics(predict(splits.test), y_test, nv, HORIZONS)


@pytest.mark.expensive
@pytest.mark.data
def test_small_models_beat_persistence_and_time_of_day(los_loop):
    torch.manual_seed(0)
    splits = prepare(los_loop, t_in=12, t_out=12, time_features=True)
    ref = reference_metrics(splits, "test", HORIZONS)
    n = splits.num_nodes
    models = {
        "GraphWaveNet(small)": (GraphWaveNet(n, in_features=2, out_features=1, profile="small"), 8, 3e-3),
        "DCRNN(small)": (DCRNN(n, in_features=2, out_features=1, profile="small", num_layers=1), 6, 5e-3),
    }
    print()
    for name in ("persistence", "time_of_day"):
        print(f"{name:22s}" + "".join(f"  MAE@{h} {ref[name][f'mae_h{h}']:.3f}" for h in HORIZONS))
    failures = []
    for name, (model, epochs, lr) in models.items():
        torch.manual_seed(0)
        print(f"{name}: {epochs} epochs, lr {lr}")
        m = train_and_test(model, splits, epochs, lr)
        print(f"{name:22s}" + "".join(f"  MAE@{h} {m[f'mae_h{h}']:.3f}" for h in HORIZONS))
        for h in HORIZONS:
            for base in ("persistence", "time_of_day"):
                if not m[f"mae_h{h}"] < ref[base][f"mae_h{h}"]:
                    failures.append(f"{name} MAE@{h} {m[f'mae_h{h}']:.3f} >= {base} {ref[base][f'mae_h{h}']:.3f}")
    assert not failures, "; ".join(failures)
