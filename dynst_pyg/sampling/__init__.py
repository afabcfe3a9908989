"""Which training windows an epoch visits: the seeded PruningSampler and its policies (full data, random, InfoBatch, ST-Prune).

Example (a plain training loop)::

    from dynst_pyg.data import prepare
    from dynst_pyg.metrics import masked_mae
    from dynst_pyg.sampling import STPrune, iter_batches

    splits = prepare(ds, t_in=12, t_out=12)
    train = splits.train
    sampler = STPrune.from_windows(train, splits.edge_index, splits.edge_weight,
                                   num_epochs=20, target_ratio=0.5, seed=0)
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for idx in iter_batches(sampler, batch_size=64):
            x, y = train.batch(idx)
            pred = splits.scaler.inverse_transform(model(x, splits.edge_index))
            loss_per_sample = masked_mae(pred, y, splits.null_value, reduction="none")
            optimizer.zero_grad()
            (loss_per_sample * sampler.weight_of(idx)).mean().backward()
            optimizer.step()
            sampler.update(idx, loss_per_sample.detach())

:class:`~dynst_pyg.data.WindowDataset` items do not carry their window index, so with a
plain :class:`torch.utils.data.DataLoader` (``sampler=...``) the loop could not look up
``weight_of(idx)`` or call ``update(idx, ...)``: use :func:`iter_batches` and
``WindowDataset.batch`` as above, or a dataset that returns ``(index, item)``. The
package's own loop, :class:`~dynst_pyg.training.EpochEngine`, does the former. Call
``set_epoch`` before each epoch (as with ``DistributedSampler``); the kept set is fixed at
that call, so ``update`` during an epoch affects the next one.
"""

from .base import PruningSampler, epoch_skip_ratio, iter_batches
from .features import rank_normalize, window_complexity, window_nonstationarity
from .policies import POLICIES, FullData, InfoBatch, RandomPrune, STPrune, make_sampler

__all__ = [
    "PruningSampler",
    "FullData",
    "RandomPrune",
    "InfoBatch",
    "STPrune",
    "iter_batches",
    "epoch_skip_ratio",
    "rank_normalize",
    "window_complexity",
    "window_nonstationarity",
    "make_sampler",
    "POLICIES",
]
