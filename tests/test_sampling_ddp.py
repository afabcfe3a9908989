"""Two-process torch.distributed (gloo) test of the pruning samplers."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dynst_pyg.sampling import STPrune, iter_batches

N = 203
EPOCHS = 4


def _window_loss(idx: torch.Tensor) -> torch.Tensor:
    return (idx.to(torch.float64) * 0.37).sin().abs() + 0.01


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(0)
        complexity, nonstat = torch.rand(N, generator=g), torch.rand(N, generator=g)
        # num_replicas / rank come from the initialised process group
        sampler = STPrune(complexity, nonstat, num_epochs=EPOCHS, target_ratio=0.5, seed=42)
        record = {"rank": sampler.rank, "replicas": sampler.num_replicas, "epochs": []}
        for epoch in range(EPOCHS):
            sampler.set_epoch(epoch)
            local = list(sampler)
            record["epochs"].append({"local": local, "len": len(sampler),
                                     "kept": sampler.kept_indices.tolist(),
                                     "weights": sampler.weights.clone()})
            for idx in iter_batches(sampler, 32):
                sampler.update(idx, _window_loss(idx))      # each rank reports only its own shard
            record["epochs"][-1]["loss"] = sampler.losses
            record["epochs"][-1]["seen"] = sampler.seen
        torch.save(record, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_shards_and_shared_scores(tmp_path):
    if not dist.is_available():
        pytest.fail("torch.distributed is not available in this torch build")
    world = 2
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    recs = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]
    assert [r["rank"] for r in recs] == [0, 1] and all(r["replicas"] == 2 for r in recs)
    pruned_epochs = 0
    for e in range(EPOCHS):
        a, b = recs[0]["epochs"][e], recs[1]["epochs"][e]
        # same kept set and weights on both ranks
        assert a["kept"] == b["kept"] and torch.equal(a["weights"], b["weights"])
        kept = set(a["kept"])
        la, lb = a["local"], b["local"]
        assert len(la) == len(lb) == a["len"] == b["len"]
        assert set(la) | set(lb) == kept
        overlap = set(la) & set(lb)
        # shards are disjoint except for the padding that equalises them (at most one window for 2 ranks)
        assert len(la) + len(lb) - len(kept) == len(overlap) <= 1
        if len(kept) % 2 == 0:
            assert not overlap
        # scores were all-gathered: identical tables, and every kept window was recorded on both ranks
        assert torch.equal(a["loss"], b["loss"]) and torch.equal(a["seen"], b["seen"])
        idx = torch.tensor(sorted(kept))
        assert bool(a["seen"][idx].all())
        assert torch.allclose(a["loss"][idx], _window_loss(idx))
        pruned_epochs += len(kept) < N
    assert pruned_epochs >= 1                       # epochs 1..2 prune (anneal at ceil(0.875*4)=4)
