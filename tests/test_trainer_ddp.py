"""DynST under torch.distributed (gloo, 2 CPU processes): the ranks agree, and agree with one process."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dynst_pyg.data import prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.training import DynSTConfig, DynSTTrainer


class TinyForecaster(nn.Module):
    """A backbone without batch statistics (so a batch split over ranks trains exactly like one batch):
    a per-node linear map of the input window plus one graph propagation step and a node embedding."""

    def __init__(self, num_nodes: int, t_in: int = 12, t_out: int = 12) -> None:
        super().__init__()
        self.time = nn.Linear(t_in, t_out)
        self.mix = nn.Linear(t_out, t_out, bias=False)
        self.node_bias = nn.Parameter(torch.zeros(num_nodes))

    def forward(self, x, edge_index, edge_weight=None, node_index=None):
        h = self.time(x[..., 0].transpose(1, 2))                       # [B, K, T_out]
        w = torch.ones(edge_index.size(1)) if edge_weight is None else edge_weight
        agg = torch.zeros_like(h).index_add_(1, edge_index[1], h[:, edge_index[0]] * w.view(1, -1, 1))
        bias = self.node_bias if node_index is None else self.node_bias[node_index]
        out = h + 0.1 * self.mix(agg) + bias.view(1, -1, 1)
        return out.transpose(1, 2).unsqueeze(-1)                       # [B, T_out, K, 1]


def _tiny_run(num_nodes: int, batch_size: int, checkpoint_dir=None) -> dict:
    sp = prepare(synthetic_road_network(num_nodes=num_nodes, num_steps=400, redundant_fraction=0.3, seed=3))
    cfg = DynSTConfig(sparsity=0.5, schedule="dropregrow", warmup_epochs=1, search_epochs=2, finetune_epochs=1,
                      batch_size=batch_size, max_batches=6, progress=False, seed=0, device="cpu",
                      checkpoint_dir=checkpoint_dir)
    tr = DynSTTrainer(lambda: TinyForecaster(num_nodes), sp, cfg)
    res = tr.fit()
    return {"keep": res.mask.keep.tolist(), "state": {k: v.detach().clone() for k, v in res.model.state_dict().items()},
            "search_state": tr.record.search_state, "history": res.history, "test_mae": res.test_metrics["mae"]}


def _planted_run() -> dict:
    from dynst_pyg.models import GraphWaveNet

    ds = synthetic_road_network(num_nodes=50, num_steps=2016, redundant_fraction=0.4, seed=0)
    cfg = DynSTConfig(sparsity=0.4, schedule="iterative", schedule_kwargs={"rounds": 4}, warmup_epochs=2,
                      search_epochs=2, finetune_epochs=1, batch_size=32, progress=False, seed=0, device="cpu")
    tr = DynSTTrainer(lambda: GraphWaveNet(50, profile="small"), prepare(ds), cfg)
    mask = tr.search()
    return {"keep": mask.keep.tolist(), "pruned": mask.pruned.tolist(), "planted": ds.meta["redundant"].tolist(),
            "search_state": tr.record.search_state}


def _worker(rank: int, world: int, init_file: str, out_dir: str, job: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if job == "tiny":
            rec = _tiny_run(20, batch_size=16, checkpoint_dir=os.path.join(out_dir, "ckpt"))
        else:
            rec = _planted_run()
        torch.save(rec, os.path.join(out_dir, f"{job}{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path, job: str, world: int = 2) -> list[dict]:
    if not dist.is_available():
        pytest.fail("torch.distributed is not available in this torch build")
    mp.spawn(_worker, args=(world, str(tmp_path / f"init-{job}"), str(tmp_path), job), nprocs=world, join=True)
    return [torch.load(tmp_path / f"{job}{r}.pt", weights_only=False) for r in range(world)]


def _assert_same_state(a: dict, b: dict, atol: float = 0.0) -> None:
    """Equal keys; floating tensors within ``atol`` (0: bitwise), the others exactly."""
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None:
            assert b[k] is None
        elif a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=atol, rtol=0), (k, (a[k] - b[k]).abs().max())
        else:
            assert torch.equal(a[k], b[k]), k


def test_two_ranks_with_half_batches_match_one_process(tmp_path):
    """2 ranks x batch 8 == 1 process x batch 16: the same mask; weights equal within one Adam step.

    The global batch of 16 is split 8 + 8; DDP averages the two shards' gradients, which is the
    gradient of the 16-window mean; the mask statistics are averaged after every step. Bitwise
    equality is impossible (the all-reduce sums in another order), and Adam turns a rounding
    difference in a near-zero gradient into a step of up to ``lr``; so weights are compared with an
    absolute tolerance of ``lr = 3e-3`` (one Adam step) after 1 + 2 + 1 epochs of 6 steps, and
    the test MAE to a relative 1e-3.
    """
    ranks = _spawn(tmp_path, "tiny")
    one = _tiny_run(20, batch_size=16)
    assert ranks[0]["keep"] == ranks[1]["keep"] == one["keep"]
    _assert_same_state(ranks[0]["state"], ranks[1]["state"])          # the ranks agree exactly
    _assert_same_state(ranks[0]["state"], one["state"], atol=3e-3)     # and agree with one process
    _assert_same_state(ranks[0]["search_state"], one["search_state"], atol=3e-3)
    assert [h["phase"] for h in ranks[0]["history"]] == [h["phase"] for h in one["history"]]
    assert ranks[0]["test_mae"] == pytest.approx(one["test_mae"], rel=1e-3)
    assert (tmp_path / "ckpt" / "dynst_checkpoint.pt").is_file()      # written once, by rank 0


@pytest.mark.slow
def test_two_ranks_prune_the_planted_sensors(tmp_path):
    """The planted network of ``test_trainer.py::test_planted_redundant_sensors_are_pruned`` in 2 processes."""
    a, b = _spawn(tmp_path, "planted")
    assert a["keep"] == b["keep"] and len(a["keep"]) == 30
    _assert_same_state(a["search_state"], b["search_state"])
    hit = len(set(a["planted"]) & set(a["pruned"]))
    assert hit >= 18, f"only {hit}/20 planted sensors pruned in the 2-process run (goal: 90 %)"
