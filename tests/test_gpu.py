"""CUDA paths: the run's tensors live on the GPU, mixed precision trains, results match the CPU.

Skipped, with the reason printed by ``-ra``, on machines without CUDA (the default test machine).
"""

from __future__ import annotations

import pytest
import torch

from dynst_pyg.data import prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.models import GraphWaveNet
from dynst_pyg.training import DynSTConfig, DynSTTrainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)")]


def _cfg(**kw):
    base = dict(sparsity=0.5, schedule="oneshot", warmup_epochs=1, search_epochs=1, finetune_epochs=1, max_batches=3,
                batch_size=16, progress=False, seed=0)
    base.update(kw)
    return DynSTConfig(**base)


@pytest.fixture(scope="module")
def tiny():
    return prepare(synthetic_road_network(num_nodes=24, num_steps=500, redundant_fraction=0.3, seed=1))


@pytest.mark.parametrize("precision", ["32", "bf16", "16"])
def test_fit_on_cuda(tiny, precision):
    tr = DynSTTrainer(lambda: GraphWaveNet(24, profile="small"), tiny, _cfg(device="cuda", precision=precision))
    assert tr.windows.train.inputs.is_cuda and tr.windows.val.inputs is tr.windows.train.inputs
    res = tr.fit()
    assert all(p.is_cuda for p in res.model.parameters())
    assert res.mask.num_kept == 12 and res.test_metrics["mae"] > 0
    d_ms, p_ms, speed = tr.served_speedup(res.model, res.mask, batch=8, repeats=3, warmup=1)
    assert d_ms > 0 and p_ms > 0


def test_cuda_and_cpu_agree(tiny):
    """fp32 on the GPU and the CPU: nearly the same mask, test MAE within 5 % (kernels differ in rounding,
    which can flip near-ties of the importance)."""
    cpu = DynSTTrainer(lambda: GraphWaveNet(24, profile="small"), tiny, _cfg(device="cpu")).fit()
    gpu = DynSTTrainer(lambda: GraphWaveNet(24, profile="small"), tiny, _cfg(device="cuda")).fit()
    assert len(set(gpu.mask.keep.tolist()) & set(cpu.mask.keep.tolist())) >= 9
    assert gpu.test_metrics["mae"] == pytest.approx(cpu.test_metrics["mae"], rel=0.05)
