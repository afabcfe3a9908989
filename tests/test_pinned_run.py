"""A tiny seeded DynST run gives the mask and metrics it gave before the package was reorganised.

The numbers were printed by the same run on the flat layout (commit ea66d24); a change here
means behaviour changed, not only the layout.
"""

from __future__ import annotations

import pytest
import torch

from dynst_pyg import DynSTConfig, DynSTTrainer, prepare
from dynst_pyg.datasets import synthetic_road_network
from dynst_pyg.models import GraphWaveNet

PINNED = {
    "defaults": ({}, [1, 2, 3, 4, 8, 9, 11, 12, 13, 14, 16, 19], 3.6746866703033447),
    "model_terms": (dict(recon_weight=0.0), [7, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 23], 4.000797271728516),
    "dropregrow_kept": (dict(schedule="dropregrow", target="kept"), [0, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20, 23],
                        3.773563861846924),
}


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_road_network(num_nodes=24, num_steps=500, redundant_fraction=0.3, seed=1))


@pytest.mark.parametrize("case", sorted(PINNED))
def test_seeded_run_gives_the_pinned_mask_and_mae(splits, case):
    kw, keep, test_mae = PINNED[case]
    cfg = DynSTConfig(**{**dict(sparsity=0.5, schedule="iterative", warmup_epochs=1, search_epochs=1,
                                finetune_epochs=2, max_batches=4, batch_size=16, progress=False, seed=0), **kw})
    torch.set_num_threads(1)
    res = DynSTTrainer(lambda: GraphWaveNet(24, profile="small", residual_channels=8, dilation_channels=8,
                                            skip_channels=16, end_channels=16), splits, cfg).fit()
    assert res.mask.keep.tolist() == keep
    assert res.test_metrics["mae"] == pytest.approx(test_mae, rel=1e-4)
