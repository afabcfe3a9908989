"""Tests for dynst_pyg.sampling (ST-Prune, InfoBatch, random and full-data samplers)."""

import math

import pytest
import torch

from dynst_pyg.metrics import masked_mae
from dynst_pyg.sampling import (POLICIES, FullData, InfoBatch, PruningSampler, RandomPrune, STPrune,
                                epoch_skip_ratio, iter_batches, make_sampler, rank_normalize,
                                window_complexity, window_nonstationarity)


class _Windows:
    """Minimal window dataset: ``batch(idx)`` -> (x [B, T, N, F], y)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.calls = []

    def __len__(self) -> int:
        return self.x.size(0)

    def batch(self, idx):
        self.calls.append(int(idx.numel()))
        return self.x[idx], torch.zeros(idx.numel(), 1)


def _linear_problem(n=240, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    theta_true = torch.randn(d, generator=g, dtype=torch.float64)
    y = x @ theta_true + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    theta = torch.zeros(d, dtype=torch.float64)
    resid = x @ theta - y
    per_sample_grad = resid.unsqueeze(1) * x                        # d/dtheta of 0.5 * resid^2
    loss = 0.5 * resid.pow(2)
    return per_sample_grad, loss


def _stprune(n, seed=0, **kw):
    g = torch.Generator().manual_seed(100 + seed)
    kw.setdefault("num_epochs", 10)
    return STPrune(torch.rand(n, generator=g), torch.rand(n, generator=g), seed=seed, **kw)


def _fill(sampler, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sampler.num_samples
    sampler.update(torch.arange(n), torch.rand(n, generator=g))


# ---------------------------------------------------------------- unbiasedness
@pytest.mark.parametrize("mode", [{"target_ratio": 0.5}, {"prune_ratio": 0.6}])
def test_stprune_weighted_gradient_unbiased_per_bin(mode):
    n, draws = 240, 3000
    grads, loss = _linear_problem(n)
    g = torch.Generator().manual_seed(7)
    sampler = STPrune(torch.rand(n, generator=g), torch.rand(n, generator=g), num_epochs=draws + 10,
                      delta=1.0, num_bins=3, stationarity_strength=0.6, seed=3, **mode)
    sampler.update(torch.arange(n), loss)
    w = torch.empty(draws, n, dtype=torch.float64)
    for e in range(1, draws + 1):
        sampler.set_epoch(e)
        w[e - 1] = sampler.weights.to(torch.float64)
    assert (w == 0).any(dim=1).all(), "every drawn epoch must prune something"
    bins = sampler.bins
    pruned_frac = []
    for b in range(3):
        member = bins == b
        full = grads[member].sum(0) / n                                  # bin's share of the full gradient
        est = (w[:, member] @ grads[member]) / n                          # [draws, d]
        mean, se = est.mean(0), est.std(0) / math.sqrt(draws)
        assert torch.all((mean - full).abs() <= 4.5 * se + 1e-12), (b, mean, full, se)
        # negative control: without the 1/(1 - r_b) rescaling the estimate is biased
        naive = ((w[:, member] > 0).to(torch.float64) @ grads[member]) / n
        assert ((naive.mean(0) - full).abs() > 6 * se).any()
        wb = w[:, member]
        below = (wb == 0) | (wb > 1)                                   # below-threshold members
        pruned_frac.append(float((wb == 0).sum() / below.sum()))
    # stationarity-aware: the most stationary bin's below-threshold windows are pruned most
    # (bins may share the cap r_max = 1 - (1 - r) / 2, hence the rounding slack)
    assert pruned_frac[0] >= pruned_frac[1] - 0.02 and pruned_frac[1] > pruned_frac[2] + 0.05


@pytest.mark.parametrize("cls", [InfoBatch, RandomPrune])
def test_baselines_weighted_gradient_unbiased(cls):
    n, draws = 200, 2000
    grads, loss = _linear_problem(n, seed=1)
    sampler = cls(n, num_epochs=draws + 5, prune_ratio=0.5, delta=1.0, seed=11)
    sampler.update(torch.arange(n), loss)
    w = torch.empty(draws, n, dtype=torch.float64)
    for e in range(1, draws + 1):
        sampler.set_epoch(e)
        w[e - 1] = sampler.weights.to(torch.float64)
    full = grads.sum(0) / n
    est = (w @ grads) / n
    se = est.std(0) / math.sqrt(draws)
    assert torch.all((est.mean(0) - full).abs() <= 4.5 * se + 1e-12)
    assert se.max() > 0


def test_infobatch_weights_are_inverse_keep_ratio():
    n = 100
    s = InfoBatch(n, num_epochs=10, prune_ratio=0.5)
    loss = torch.arange(n, dtype=torch.float32)                       # mean 49.5: 50 below
    s.update(torch.arange(n), loss)
    s.set_epoch(1)
    w = s.weights
    assert torch.all(w[50:] == 1.0)                                   # above-mean: always kept, weight 1
    assert int((w[:50] == 0).sum()) == 25
    assert torch.all(w[:50][w[:50] > 0] == 2.0)                        # 1 / (1 - 0.5)
    assert len(s) == 75


def test_random_prune_fraction_and_weights():
    s = RandomPrune(1000, num_epochs=10, prune_ratio=0.3)
    s.set_epoch(2)
    assert s.num_kept == 700
    w = s.weights
    assert torch.allclose(w[w > 0], torch.full((700,), 1 / 0.7))


# ---------------------------------------------------------------- schedule
@pytest.mark.parametrize("num_epochs,delta", [(10, 0.875), (7, 0.5), (8, 0.875), (3, 1.0)])
def test_annealing_switches_exactly_at_ceil_delta_e(num_epochs, delta):
    n = 300
    anneal = math.ceil(delta * num_epochs)
    for sampler in (_stprune(n, num_epochs=num_epochs, delta=delta, target_ratio=0.5),
                    InfoBatch(n, num_epochs, delta=delta),
                    RandomPrune(n, num_epochs, delta=delta)):
        _fill(sampler)
        assert sampler.anneal_epoch == anneal
        for e in range(num_epochs + 2):
            sampler.set_epoch(e)
            if e == 0 or e >= anneal:
                assert len(sampler) == n
                assert torch.equal(sampler.weights, torch.ones(n))
                assert not sampler.is_pruning_epoch(e)
            else:
                assert len(sampler) < n
                assert sampler.is_pruning_epoch(e)


def test_first_epoch_prunes_nothing():
    n = 128
    for sampler in (_stprune(n, target_ratio=0.7), InfoBatch(n, 10), RandomPrune(n, 10),
                    FullData(n, 10)):
        sampler.set_epoch(0)
        assert len(sampler) == n and sorted(sampler) == list(range(n))
        assert torch.equal(sampler.weights, torch.ones(n))


def test_nothing_pruned_before_losses_are_seen():
    n = 64
    s = _stprune(n, target_ratio=0.5)
    s.set_epoch(1)                                      # no update yet: nothing is eligible
    assert len(s) == n
    half = torch.arange(0, n, 2)
    s.update(half, torch.rand(half.numel()))
    s.set_epoch(1)
    pruned = (s.weights == 0).nonzero().view(-1)
    assert pruned.numel() > 0 and bool((pruned % 2 == 0).all())   # only seen windows may be pruned


def test_equal_scores_prune_nothing_with_mean_threshold():
    n = 50
    s = InfoBatch(n, 10)
    s.update(torch.arange(n), torch.full((n,), 0.3))
    s.set_epoch(3)
    assert len(s) == n


def test_target_ratio_mode_reaches_aggressive_budget():
    n = 1000
    for target in (0.3, 0.5, 0.7):
        for sampler in (_stprune(n, target_ratio=target), InfoBatch(n, 10, target_ratio=target),
                        RandomPrune(n, 10, target_ratio=target)):
            _fill(sampler)
            sampler.set_epoch(1)
            assert abs(sampler.skipped_fraction - target) <= 0.01, (type(sampler).__name__, target)


def test_stprune_prunes_low_scores_only():
    n = 400
    s = _stprune(n, target_ratio=0.4, prune_ratio=0.8)
    _fill(s, seed=3)
    s.set_epoch(1)
    scores = s.scores
    pruned = s.weights == 0
    assert scores[pruned].max() <= torch.quantile(scores, 0.5) + 1e-12   # q = 0.4 / 0.8
    assert torch.all(s.weights[scores > torch.quantile(scores, 0.51)] == 1.0)


def test_score_uses_complexity():
    comp = torch.tensor([0.0, 1.0, 0.5])
    s = STPrune(comp, num_epochs=5, alpha=2.0)
    s.update(torch.arange(3), torch.tensor([1.0, 1.0, 2.0]))
    assert torch.allclose(s.scores, torch.tensor([1.0, 3.0, 4.0], dtype=torch.float64))


def test_len_is_right_every_epoch():
    n = 257
    s = _stprune(n, num_epochs=8, target_ratio=0.6)
    lengths = []
    for e in range(8):
        s.set_epoch(e)
        items = list(s)
        assert len(items) == len(s) == s.num_kept
        assert len(set(items)) == len(items)
        assert torch.equal(s.kept_indices, torch.tensor(sorted(items)))
        lengths.append(len(s))
        s.update(torch.tensor(items), torch.rand(len(items)))
    assert lengths[0] == n and lengths[-1] == n and min(lengths) < 0.5 * n


def test_iter_batches_chunks_the_epoch():
    s = RandomPrune(103, 5, prune_ratio=0.2)
    s.set_epoch(1)
    chunks = list(iter_batches(s, 16))
    assert all(c.dtype == torch.long for c in chunks)
    assert [c.numel() for c in chunks[:-1]] == [16] * (len(chunks) - 1)
    assert torch.cat(chunks).tolist() == list(s)
    assert sum(c.numel() for c in iter_batches(s, 16, drop_last=True)) == (len(s) // 16) * 16
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(s, 0))


# ---------------------------------------------------------------- determinism
def test_deterministic_under_seed_and_no_global_rng():
    def run(seed):
        s = _stprune(300, seed=0, target_ratio=0.5)
        s.seed = seed
        out = []
        for e in range(6):
            s.set_epoch(e)
            items = list(s)
            out.append((items, s.weights.clone()))
            s.update(torch.tensor(items), torch.tensor(items, dtype=torch.float32).sin().abs())
        return out

    state = torch.random.get_rng_state()
    a, b, c = run(5), run(5), run(6)
    assert torch.equal(torch.random.get_rng_state(), state)          # global RNG untouched
    for (ia, wa), (ib, wb) in zip(a, b):
        assert ia == ib and torch.equal(wa, wb)
    assert any(ia != ic for (ia, _), (ic, _) in zip(a, c))


def test_different_epochs_draw_different_sets():
    s = InfoBatch(200, 10, prune_ratio=0.5)
    _fill(s)
    s.set_epoch(1)
    k1 = s.kept_indices
    s.set_epoch(2)
    assert not torch.equal(k1, s.kept_indices)
    s.set_epoch(1)
    assert torch.equal(k1, s.kept_indices)


def test_no_shuffle_yields_sorted():
    s = InfoBatch(60, 10, shuffle=False)
    _fill(s)
    s.set_epoch(1)
    assert list(s) == sorted(s)


# ---------------------------------------------------------------- sharding (single process)
@pytest.mark.parametrize("drop_last", [False, True])
def test_shards_partition_the_kept_set(drop_last):
    n, reps = 101, 3
    samplers = [_stprune(n, target_ratio=0.5, num_replicas=reps, rank=r, drop_last=drop_last)
                for r in range(reps)]
    for s in samplers:
        _fill(s)
        s.set_epoch(1)
    kept = set(samplers[0].kept_indices.tolist())
    shards = [list(s) for s in samplers]
    assert len({len(sh) for sh in shards}) == 1
    assert all(len(sh) == len(s) for sh, s in zip(shards, samplers))
    union = set().union(*map(set, shards))
    total = sum(map(len, shards))
    if drop_last:
        assert total == (len(kept) // reps) * reps == len(union)        # disjoint
        assert union <= kept and len(kept) - len(union) < reps
    else:
        assert union == kept and total == math.ceil(len(kept) / reps) * reps
        assert total - len(kept) < reps                                    # only the padding repeats


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_bad_ratios(bad):
    with pytest.raises(ValueError, match="prune_ratio"):
        InfoBatch(10, 5, prune_ratio=bad)
    with pytest.raises(ValueError, match="target_ratio"):
        _stprune(10, target_ratio=bad)
    with pytest.raises(ValueError, match="prune_ratio"):
        RandomPrune(10, 5, prune_ratio=bad)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01, 2])
def test_bad_delta(bad):
    with pytest.raises(ValueError, match="delta"):
        InfoBatch(10, 5, delta=bad)
    with pytest.raises(ValueError, match="delta"):
        _stprune(10, delta=bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="prune_ratio.*target_ratio"):
        InfoBatch(10, 5, prune_ratio=0.3, target_ratio=0.6)
    with pytest.raises(ValueError, match="num_epochs"):
        InfoBatch(10, 0)
    with pytest.raises(TypeError, match="prune_ratio"):
        InfoBatch(10, 5, prune_ratio="0.5")
    with pytest.raises(ValueError, match="rank"):
        InfoBatch(10, 5, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="complexity"):
        STPrune(torch.rand(3, 2), num_epochs=3)
    with pytest.raises(ValueError, match="nonstationarity"):
        STPrune(torch.rand(3), torch.rand(4), num_epochs=3)
    with pytest.raises(ValueError, match="alpha"):
        STPrune(torch.rand(3), num_epochs=3, alpha=-1.0)
    with pytest.raises(ValueError, match="policy"):
        make_sampler("nope", 10, 5)


def test_bad_update_inputs_raise_and_leave_state():
    s = InfoBatch(10, 5)
    before = s.losses
    with pytest.raises(ValueError, match="per_sample_loss.*shape"):
        s.update(torch.arange(3), torch.rand(4))
    with pytest.raises(ValueError, match="per_sample_loss.*shape"):
        s.update(torch.arange(3), torch.rand(3, 1))
    with pytest.raises(ValueError, match="per_sample_loss.*NaN"):
        s.update(torch.arange(3), torch.tensor([0.1, float("nan"), 0.2]))
    with pytest.raises(ValueError, match="per_sample_loss.*infinite"):
        s.update(torch.arange(2), torch.tensor([0.1, float("inf")]))
    with pytest.raises(ValueError, match="per_sample_loss"):
        s.update(torch.arange(2), torch.tensor([0.1, -1.0]))
    with pytest.raises(ValueError, match="indices"):
        s.update(torch.tensor([0, 10]), torch.rand(2))
    with pytest.raises(TypeError, match="indices"):
        s.update(torch.tensor([0.0, 1.0]), torch.rand(2))
    assert torch.equal(s.losses, before) and not s.seen.any()


def test_update_does_not_modify_caller_tensors_and_detaches():
    s = InfoBatch(10, 5)
    idx = torch.tensor([3, 1, 3])
    loss = torch.tensor([0.5, 0.25, 0.75], requires_grad=True)
    s.update(idx, loss * 1)
    assert idx.tolist() == [3, 1, 3] and loss.grad is None
    assert s.losses[3] == 0.75 and s.losses[1] == 0.25                 # last duplicate wins
    assert s.seen.sum() == 2


def test_epoch_skip_ratio():
    assert epoch_skip_ratio(0.0, 8) == 0.0
    # E=8, delta=0.875 -> anneal at 7, pruning epochs 1..6
    assert epoch_skip_ratio(0.45, 8) == pytest.approx(0.45 * 8 / 6)
    n = 600
    s = InfoBatch(n, 8, target_ratio=epoch_skip_ratio(0.45, 8))
    _fill(s)
    seen = 0
    for e in range(8):
        s.set_epoch(e)
        seen += len(s)
    assert abs(1 - seen / (8 * n) - 0.45) < 0.01
    with pytest.raises(ValueError, match="overall_skip"):
        epoch_skip_ratio(0.9, 8)
    with pytest.raises(ValueError, match="no epoch prunes"):
        epoch_skip_ratio(0.3, 1)


def test_state_dict_roundtrip():
    s = _stprune(50, target_ratio=0.5)
    _fill(s)
    s.set_epoch(3)
    t = _stprune(50, target_ratio=0.5)
    t.load_state_dict(s.state_dict())
    assert t.epoch == 3 and list(t) == list(s) and torch.equal(t.weights, s.weights)
    with pytest.raises(ValueError, match="state"):
        t.load_state_dict({"loss": torch.zeros(3), "seen": torch.zeros(3, dtype=torch.bool)})


# ---------------------------------------------------------------- complexity and stationarity
def test_window_complexity_hand_values():
    # path graph 0-1-2 (both directions), one time step x = [1, -1, 1]
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.tensor([1.0, -1.0, 1.0]).view(1, 1, 3, 1)
    tv, sp = window_complexity(x, ei)
    # x^T L x = (1 - -1)^2 + (-1 - 1)^2 = 8, x^T x = 3
    assert sp.item() == pytest.approx(8 / 3)
    assert tv.item() == 0.0
    # one node, times [0, 1, 3] -> TV = (1 + 2) / 2
    x2 = torch.tensor([0.0, 1.0, 3.0]).view(1, 3, 1, 1)
    tv2, sp2 = window_complexity(x2, torch.zeros(2, 0, dtype=torch.long))
    assert tv2.item() == pytest.approx(1.5) and sp2.item() == 0.0
    # edge weights scale the quadratic form; a smooth (constant) signal has 0 roughness
    tv3, sp3 = window_complexity(x, ei, torch.full((4,), 0.5))
    assert sp3.item() == pytest.approx(4 / 3)
    _, sp4 = window_complexity(torch.ones(1, 2, 3, 1), ei)
    assert sp4.item() == 0.0
    with pytest.raises(ValueError, match="edge_weight"):
        window_complexity(x, ei, torch.ones(3))
    with pytest.raises(ValueError, match="x"):
        window_complexity(torch.ones(3, 1), ei)


def test_window_complexity_checks_the_graph_against_the_windows():
    x = torch.ones(2, 3, 3, 1)
    with pytest.raises(ValueError, match=r"`edge_index` has node indices in \[0, 3\] but the graph has 3 nodes"):
        window_complexity(x, torch.tensor([[0, 3], [1, 0]]))
    with pytest.raises(ValueError, match=r"`edge_index` must have shape \[2, E\]"):
        window_complexity(x, torch.tensor([[0, 1, 2]]))
    with pytest.raises(TypeError, match="`edge_index` must be a torch.Tensor"):
        window_complexity(x, [[0, 1], [1, 0]])
    with pytest.raises(TypeError, match="`edge_weight` must be a float tensor"):
        window_complexity(x, torch.tensor([[0, 1], [1, 0]]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="`edge_weight` must be finite"):
        window_complexity(x, torch.tensor([[0, 1], [1, 0]]), torch.tensor([1.0, float("inf")]))


@pytest.mark.parametrize("bad, exc", [(True, TypeError), (2.0, TypeError), (0, ValueError), (-3, ValueError)])
def test_counts_must_be_positive_ints(bad, exc):
    with pytest.raises(exc, match="`num_samples` must be a positive int"):
        InfoBatch(bad, 5)
    with pytest.raises(exc, match="`batch_size` must be a positive int"):
        list(iter_batches(FullData(4), bad))
    with pytest.raises(exc, match="`num_bins` must be a positive int"):
        STPrune(torch.rand(4), num_epochs=3, num_bins=bad)
    assert InfoBatch(torch.tensor(7), 5).num_samples == 7       # a one-element integer tensor counts


def test_window_nonstationarity():
    const = torch.ones(1, 12, 2, 1)
    shift = torch.cat([torch.zeros(6), torch.full((6,), 3.0)]).view(1, 12, 1, 1).repeat(1, 1, 2, 1)
    noise = torch.randn(1, 12, 2, 1, generator=torch.Generator().manual_seed(0))
    ns = window_nonstationarity(torch.cat([const, shift, noise]))
    assert ns[0] == 0.0
    assert ns[1] > ns[2] > 0


def test_rank_normalize():
    r = rank_normalize(torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0]))
    assert torch.allclose(r, torch.tensor([3.0, 0.0, 1.5, 1.5, 4.0]) / 4)
    assert torch.equal(rank_normalize(torch.full((4,), 2.0)), torch.zeros(4))


def test_from_windows_chunked_and_label_free():
    g = torch.Generator().manual_seed(0)
    n_win, t, n, f = 37, 6, 5, 2
    x = torch.randn(n_win, t, n, f, generator=g)
    x[:5] = 0.1                                            # flat windows: lowest complexity
    x[5:10] *= 5                                           # rough windows: highest
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    x_before = x.clone()
    ds_a, ds_b = _Windows(x), _Windows(x)
    a = STPrune.from_windows(ds_a, ei, num_epochs=4, chunk_size=8)
    b = STPrune.from_windows(ds_b, ei, num_epochs=4, chunk_size=1000)
    assert torch.equal(x, x_before)
    assert max(ds_a.calls) <= 8 and len(ds_a.calls) == 5
    assert torch.allclose(a.complexity, b.complexity) and torch.allclose(a.nonstationarity, b.nonstationarity)
    assert a.complexity.min() >= 0 and a.complexity.max() <= 1
    assert a.complexity[:5].max() < a.complexity[10:].min()
    assert a.complexity[5:10].min() > a.complexity[10:].median()
    tv, sp = window_complexity(x, ei)
    assert torch.allclose(a.complexity, 0.5 * (rank_normalize(tv) + rank_normalize(sp)))
    assert set(a.bins.tolist()) == {0, 1, 2, 3}
    # features selection
    c = STPrune.from_windows(_Windows(x), ei, num_epochs=4, features=[0])
    tv0, sp0 = window_complexity(x[..., :1], ei)
    assert torch.allclose(c.complexity, 0.5 * (rank_normalize(tv0) + rank_normalize(sp0)))


def test_make_sampler_names():
    x = torch.randn(20, 4, 3, 1)
    ds = _Windows(x)
    ei = torch.tensor([[0, 1], [1, 2]])
    built = {p: make_sampler(p, 20, 6, window_dataset=ds, edge_index=ei, target_ratio=0.5) for p in POLICIES}
    assert isinstance(built["full"], FullData) and isinstance(built["random"], RandomPrune)
    assert isinstance(built["infobatch"], InfoBatch) and isinstance(built["stprune"], STPrune)
    assert all(isinstance(s, PruningSampler) and s.policy_name == p for p, s in built.items())
    assert "STPrune(" in repr(built["stprune"]) and "target_ratio=0.5" in repr(built["stprune"])


def test_plain_training_loop_reduces_loss():
    """The documented loop: weighted loss + update, on a tiny linear forecaster."""
    g = torch.Generator().manual_seed(0)
    n_win, t, n = 96, 4, 3
    x = torch.randn(n_win, t, n, 1, generator=g)
    y = x[:, -1:].clone() * 0.8
    ds = _Windows(x)
    sampler = STPrune.from_windows(ds, torch.tensor([[0, 1], [1, 2]]), num_epochs=12, target_ratio=0.4, seed=1)
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.2)
    first = last = None
    seen = 0
    for epoch in range(12):
        sampler.set_epoch(epoch)
        for idx in iter_batches(sampler, 16):
            xb, yb = x[idx], y[idx]
            loss_ps = masked_mae(xb[:, -1:] * w, yb, reduction="none")
            opt.zero_grad()
            (loss_ps * sampler.weight_of(idx)).mean().backward()
            opt.step()
            sampler.update(idx, loss_ps.detach())
            seen += idx.numel()
        mean_loss = float(sampler.losses.mean())
        first = mean_loss if first is None else first
        last = mean_loss
    assert last < 0.5 * first
    assert seen < 12 * n_win


def test_from_windows_on_los_loop(los_loop_splits):
    train = los_loop_splits.train
    s = STPrune.from_windows(train, los_loop_splits.edge_index, los_loop_splits.edge_weight,
                             num_epochs=8, target_ratio=0.6, chunk_size=300)
    n = len(train)
    assert s.num_samples == n and s.complexity.shape == (n,)
    assert torch.isfinite(s.complexity).all() and torch.isfinite(s.nonstationarity).all()
    counts = torch.bincount(s.bins, minlength=4)
    assert counts.min() >= n // 4 - 2                   # equal-count stationarity bins
    x, _ = train.batch(torch.arange(5))
    tv, sp = window_complexity(x, los_loop_splits.edge_index, los_loop_splits.edge_weight)
    assert torch.allclose(s.temporal_variation[:5], tv) and torch.allclose(s.spatial_roughness[:5], sp)
    s.update(torch.arange(n), torch.rand(n, generator=torch.Generator().manual_seed(0)))
    s.set_epoch(1)
    assert abs(s.skipped_fraction - 0.6) < 0.01 and len(s) == s.num_kept
