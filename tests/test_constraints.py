"""SelectionConstraints and the one constrained selection rule."""

from __future__ import annotations

import copy
import itertools
import json
import pickle

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dynst_pyg.selection.constraints import SelectionConstraints
from dynst_pyg.selection.rules import GreedySelection, constrained_top_k, top_k_mask


def kept(mask):
    return mask.nonzero().view(-1).tolist()


def bools(*idx, n):
    m = torch.zeros(n, dtype=torch.bool)
    m[list(idx)] = True
    return m


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, match", [
    (dict(costs=[1.0, -1.0]), r"costs\[1\]` is -1.0; every cost must be >= 0"),
    (dict(costs=[1.0, float("nan")]), r"costs\[1\]` is nan"),
    (dict(costs=[1.0, float("inf")]), r"costs\[1\]` is inf"),
    (dict(costs=[[1.0]]), "1-D"),
    (dict(cost_budget=3.0), "`cost_budget` needs `costs`"),
    (dict(costs=[1.0], cost_budget=-1.0), "`cost_budget` must be a finite number >= 0"),
    (dict(min_per_region=1), "`min_per_region` needs `regions`"),
    (dict(regions=["a", "b"], min_per_region={"z": 1}), "names region 'z', which no sensor belongs to"),
    (dict(regions=["a", "b"], min_per_region=-1), "must be an int >= 0"),
    (dict(regions=["a", ""]), r"regions\[1\]` is an empty label"),
    (dict(costs=[1.0, 1.0], regions=["a"]), "one label per sensor"),
    (dict(costs=[1.0, 1.0], num_nodes=3), "num_nodes=3"),
    (dict(protected=[-1]), "negative"),
    (dict(protected=[1.5]), "integer"),
    (dict(costs=[1.0, 1.0], protected=[2]), r"outside the valid range 0..1"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        SelectionConstraints(**kwargs)


def test_infeasible_constraints_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="min_per_region=2 is impossible in region 'X' with 1 sensor$"):
        SelectionConstraints(regions=["X", "Y", "Y"], min_per_region=2)
    with pytest.raises(ValueError, match=r"protected sensors alone cost 12 > cost_budget 10"):
        SelectionConstraints(costs=[5.0, 7.0, 1.0], cost_budget=10.0, protected=[0, 1])
    # region b at its cheapest needs sensor 3 (cost 4): 3 (protected) + 2 (a) + 4 (b) = 9 > 8
    with pytest.raises(ValueError, match=r"cheapest costs 9 \(protected 3 \+ region minima 6\) > cost_budget 8"):
        SelectionConstraints(costs=[3.0, 2.0, 5.0, 4.0, 9.0], cost_budget=8.0,
                             regions=["p", "a", "a", "b", "b"], min_per_region={"a": 1, "b": 1}, protected=[0])
    # exactly on budget is fine
    c = SelectionConstraints(costs=[3.0, 2.0, 5.0, 4.0, 9.0], cost_budget=9.0,
                             regions=["p", "a", "a", "b", "b"], min_per_region={"a": 1, "b": 1}, protected=[0])
    assert c.min_cost == 9.0 and c.min_count == 3
    assert kept(c.cheapest_selection()) == [0, 1, 3]


def test_fields_are_copies_and_the_object_is_immutable():
    costs = [1.0, 2.0, 3.0]
    c = SelectionConstraints(costs=costs, cost_budget=4.0, regions=[1, 1, 2], min_per_region={1: 1},
                             protected=[2, 2])
    costs[0] = 99.0
    assert c.costs.tolist() == [1.0, 2.0, 3.0] and c.regions == ["1", "1", "2"]
    assert c.min_per_region == {"1": 1} and c.region_minima == {"1": 1, "2": 0}
    assert c.protected == [2] and c.num_nodes == 3 and c.region_labels == ["1", "2"]
    t = c.costs
    t[0] = 5.0
    assert c.costs[0] == 1.0
    with pytest.raises(AttributeError, match="immutable"):
        c.cost_budget = 1.0
    assert copy.deepcopy(c) is c
    assert pickle.loads(pickle.dumps(c)) == c
    d = c.replace(cost_budget=5.0)
    assert d.cost_budget == 5.0 and c.cost_budget == 4.0 and d != c
    with pytest.raises(TypeError, match="unknown field"):
        c.replace(budget=3)
    with pytest.raises(ValueError, match="protected sensors alone cost 3"):
        c.replace(cost_budget=2.0)


def test_dict_roundtrip_through_json():
    c = SelectionConstraints(costs=[1.0, 2.5, 0.0, 4.0], cost_budget=5.0, regions=["a", "b", "a", "b"],
                             min_per_region={"b": 1}, protected=[2])
    obj = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert SelectionConstraints.from_dict(obj) == c
    assert SelectionConstraints.from_dict(SelectionConstraints(protected=[1]).to_dict()).protected == [1]
    with pytest.raises(ValueError, match="mask.json: unknown field"):
        SelectionConstraints.from_dict({**obj, "extra": 1}, source="mask.json")
    with pytest.raises(ValueError, match="format_version"):
        SelectionConstraints.from_dict({**obj, "format_version": 99})
    with pytest.raises(ValueError, match=r"x: `costs\[0\]` is -1.0"):
        SelectionConstraints.from_dict({**obj, "costs": [-1.0, 1, 1, 1]}, source="x")


def test_check_against_the_data():
    c = SelectionConstraints(protected=[4])
    assert c.num_nodes is None and c.check(5) is c
    with pytest.raises(ValueError, match="outside the valid range 0..3"):
        c.check(4)
    with pytest.raises(ValueError, match="built for 3 sensors, the data has 4"):
        SelectionConstraints(costs=[1.0, 1.0, 1.0]).check(4)


def test_violations_list_every_broken_rule():
    c = SelectionConstraints(costs=[1.0, 2.0, 3.0, 4.0], cost_budget=5.0, regions=["a", "a", "b", "b"],
                             min_per_region=1, protected=[0])
    assert c.violations(bools(0, 2, n=4)) == [] and c.is_satisfied(bools(0, 2, n=4))
    assert c.violations(bools(1, 3, n=4)) == ["protected sensor(s) [0] not kept",
                                                "kept cost 6 exceeds cost_budget 5"]
    assert c.violations(bools(0, 1, n=4)) == ["region 'b' keeps 0 sensor(s), below its minimum 1"]
    assert c.kept_cost(bools(0, 2, n=4)) == 4.0
    assert SelectionConstraints(protected=[1]).kept_cost(bools(1, n=3)) is None
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        c.violations(bools(0, n=3))


# --------------------------------------------------------------------------- from_csv
def write(path, text):
    path.write_text(text)
    return path


def test_from_csv_reads_rows_in_any_order(tmp_path):
    ids = ["s1", "s2", "s3"]
    costs = write(tmp_path / "costs.csv", "sensor_id,cost\ns3,0.5\ns1,2\n\ns2,1e0\n")
    regions = write(tmp_path / "regions.csv", "sensor_id,region\ns2,north\ns1,south\ns3,north\n")
    c = SelectionConstraints.from_csv(ids, costs=costs, regions=regions, cost_budget=3.0, min_per_region=1,
                                      protected_ids=["s2"])
    assert c.costs.tolist() == [2.0, 1.0, 0.5] and c.regions == ["south", "north", "north"]
    assert c.protected == [1] and c.num_nodes == 3 and c.min_cost == 3.0


@pytest.mark.parametrize("column, text, match", [
    ("cost", "id,cost\na,1\n", r"row 1: expected the header 'sensor_id,cost', got 'id,cost'"),
    ("cost", "", r"row 1: expected the header 'sensor_id,cost', got an empty file"),
    ("cost", "sensor_id,cost\na,1\nzz,2\nb,1\n", r"row 3: unknown sensor id 'zz' \(not one of the 2 sensor ids"),
    ("cost", "sensor_id,cost\na,1\nb,1\na,2\n", r"row 4: duplicate sensor id 'a' \(first given on row 2\)"),
    ("cost", "sensor_id,cost\na,1\n", r"missing 1 of 2 sensors \('b'\); every sensor needs a row"),
    ("cost", "sensor_id,cost\na,cheap\nb,1\n", r"row 2: expected a finite number >= 0 for sensor 'a', got 'cheap'"),
    ("cost", "sensor_id,cost\na,-2\nb,1\n", r"row 2: expected a finite number >= 0 for sensor 'a', got '-2'"),
    ("cost", "sensor_id,cost\na,1,3\nb,1\n", r"row 2: expected 2 columns 'sensor_id,cost', got 3"),
    ("region", "sensor_id,region\na,\nb,x\n", r"row 2: expected a non-empty region label for sensor 'a'"),
])
def test_from_csv_errors_name_file_row_and_expectation(tmp_path, column, text, match):
    path = write(tmp_path / f"{column}s.csv", text)
    kwargs = {f"{column}s": path}
    with pytest.raises(ValueError, match=match) as info:
        SelectionConstraints.from_csv(["a", "b"], **kwargs)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_from_csv_missing_file_and_unknown_protected(tmp_path):
    with pytest.raises(FileNotFoundError, match="costs file not found"):
        SelectionConstraints.from_csv(["a"], costs=tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="unknown sensor id"):
        SelectionConstraints.from_csv(["a"], protected_ids=["b"])


# --------------------------------------------------------------------------- selection: exact cases
def test_docstring_example_and_plain_top_k():
    c = SelectionConstraints(costs=[1.0, 1.0, 5.0, 1.0], cost_budget=3.0, regions=["a", "a", "b", "b"],
                             min_per_region=1)
    assert kept(constrained_top_k(torch.tensor([0.9, 0.8, 0.7, 0.1]), 3, c)) == [0, 1, 3]
    s = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    assert torch.equal(constrained_top_k(s, 2), top_k_mask(s, 2))
    assert kept(constrained_top_k(s, 2, SelectionConstraints(protected=[0]))) == [0, 1]
    assert constrained_top_k(s, None).all()


def test_cost_budget_drops_the_expensive_redundant_sensor():
    # sensors 0 and 1 carry the same information; 0 scores a little higher but costs ten times more
    scores = torch.tensor([1.0, 0.95, 0.5, 0.4])
    assert kept(constrained_top_k(scores, 3)) == [0, 1, 2]
    c = SelectionConstraints(costs=[10.0, 1.0, 1.0, 1.0], cost_budget=3.0)
    assert kept(constrained_top_k(scores, 3, c)) == [1, 2, 3]
    # with room for it, the expensive one may stay
    c = SelectionConstraints(costs=[10.0, 1.0, 1.0, 1.0], cost_budget=12.0)
    assert kept(constrained_top_k(scores, 3, c)) == [0, 1, 2]


def test_the_better_of_the_score_and_ratio_walks_is_kept():
    # the count binds first: the walk by score keeps the two best
    c = SelectionConstraints(costs=[5.0, 5.0, 1.0, 1.0], cost_budget=10.0)
    assert kept(constrained_top_k(torch.tensor([1.0, 0.9, 0.1, 0.1]), 2, c)) == [0, 1]
    # the budget binds first: the walk by score per cost keeps three good cheap sensors
    c = SelectionConstraints(costs=[8.0, 3.0, 3.0, 3.0], cost_budget=10.0)
    s = torch.tensor([1.0, 0.9, 0.8, 0.7])
    assert kept(constrained_top_k(s, None, c)) == [1, 2, 3]
    assert kept(constrained_top_k(s, None, c, rule="score")) == [0]
    assert kept(constrained_top_k(s, None, c, rule="ratio")) == [1, 2, 3]
    # free sensors go first under a budget, and k=None keeps as many as the budget allows
    c = SelectionConstraints(costs=[0.0, 2.0, 2.0, 2.0], cost_budget=4.0)
    assert kept(constrained_top_k(torch.tensor([0.1, 0.9, 0.8, 0.7]), None, c)) == [0, 1, 2]


def test_region_minima_take_the_best_sensor_of_the_region():
    c = SelectionConstraints(regions=["a", "a", "b", "b"], min_per_region=1)
    assert kept(constrained_top_k(torch.tensor([0.9, 0.8, 0.7, 0.1]), 2, c)) == [0, 2]
    c = SelectionConstraints(regions=["a", "a", "a", "b", "b"], min_per_region={"b": 2})
    assert kept(constrained_top_k(torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1]), 3, c)) == [0, 3, 4]
    with pytest.raises(ValueError, match=r"k=1 kept sensors is below the 2 the constraints need \(0 protected \+ 2"):
        constrained_top_k(torch.rand(5), 1, c)


def test_candidates_and_forced():
    c = SelectionConstraints(costs=[1.0] * 5, cost_budget=3.0, regions=["a", "a", "b", "b", "b"], min_per_region=1)
    s = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    out = constrained_top_k(s, 3, c, candidates=bools(1, 3, 4, n=5))
    assert kept(out) == [1, 3, 4]
    out = constrained_top_k(s, 3, c, forced=bools(4, n=5))
    assert kept(out) == [0, 1, 4]
    with pytest.raises(ValueError, match="region 'a' needs 1 more sensor"):
        constrained_top_k(s, 3, c, candidates=bools(2, 3, n=5))
    with pytest.raises(ValueError, match="^`scores` contains NaN$"):
        constrained_top_k(torch.tensor([float("nan"), 1.0]), 1)
    with pytest.raises(ValueError, match="rule"):
        constrained_top_k(s, 3, c, rule="best")


def test_greedy_selection_refuses_inadmissible_sensors():
    c = SelectionConstraints(costs=[1.0, 1.0, 1.0], cost_budget=2.0, regions=["a", "b", "b"], min_per_region=1)
    g = GreedySelection(c, 3, k=2)
    assert g.admissible().tolist() == [True, True, True]
    g.add(1)
    assert g.admissible().tolist() == [True, False, False]  # the last place belongs to region a
    with pytest.raises(ValueError, match="cannot be added"):
        g.add(2)
    g.add(0)
    assert g.num_kept == 2 and g.kept_cost == 2.0 and not g.admissible().any()


# --------------------------------------------------------------------------- properties
@st.composite
def feasible_problems(draw, max_n=10):
    n = draw(st.integers(2, max_n))
    costs = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    regions = draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n))
    sizes = {r: regions.count(r) for r in set(regions)}
    minima = {r: draw(st.integers(0, min(2, size))) for r, size in sizes.items()}
    protected = sorted(draw(st.sets(st.integers(0, n - 1), max_size=2)))
    use_budget = draw(st.booleans())
    base = SelectionConstraints(costs=[float(c) for c in costs], regions=regions, min_per_region=minima,
                                protected=protected)
    budget = base.min_cost + draw(st.integers(0, 10)) if use_budget else None
    c = base.replace(cost_budget=None if budget is None else float(budget))
    k = draw(st.one_of(st.none(), st.integers(c.min_count if c.min_count else 1, n))) if use_budget \
        else draw(st.integers(max(1, c.min_count), n))
    scores = draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=n, max_size=n))
    return c, k, torch.tensor(scores, dtype=torch.float64)


@settings(max_examples=150, deadline=None)
@given(feasible_problems())
def test_every_selection_satisfies_random_feasible_constraints(problem):
    c, k, scores = problem
    n = scores.numel()
    for rule in ("auto", "score", "ratio"):
        out = constrained_top_k(scores, k, c, rule=rule)
        assert c.violations(out) == []
        count = int(out.sum())
        if k is not None:
            assert count <= k
        if c.cost_budget is None:
            assert count == k
        else:
            # maximal: no pruned sensor fits into the count and the budget any more
            limit = n if k is None else k
            spare = c.cost_budget - c.kept_cost(out)
            if count < limit:
                assert all(float(c.costs[i]) > spare + 1e-9 for i in range(n) if not out[i])


@settings(max_examples=80, deadline=None)
@given(feasible_problems(max_n=8))
def test_without_a_cost_budget_the_selection_has_the_best_total_score(problem):
    c, k, scores = problem
    if c.cost_budget is not None:
        c = c.replace(cost_budget=None)
        k = k or scores.numel()
    out = constrained_top_k(scores, k, c)
    n = scores.numel()
    best = max(float(scores[list(s)].sum()) for s in itertools.combinations(range(n), k)
               if c.is_satisfied(bools(*s, n=n)))
    assert float(scores[out].sum()) == pytest.approx(best, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(feasible_problems(max_n=9))
def test_cheapest_selection_is_the_cheapest_satisfying_set(problem):
    c, _, _ = problem
    assume(c.min_count > 0)  # an empty selection keeps nothing and satisfies nothing
    n = c.num_nodes
    cheapest = c.cheapest_selection()
    assert c.is_satisfied(cheapest) and int(cheapest.sum()) == c.min_count
    best = min(c.kept_cost(bools(*s, n=n)) for r in range(1, n + 1) for s in itertools.combinations(range(n), r)
               if c.is_satisfied(bools(*s, n=n)))
    assert c.min_cost == pytest.approx(best)


def test_numpy_and_list_inputs_are_accepted():
    c = SelectionConstraints(costs=np.array([1.0, 2.0]), regions=np.array(["x", "y"]), protected=np.array([1]))
    assert c.regions == ["x", "y"] and c.protected == [1]
    assert kept(constrained_top_k([0.1, 0.2], 1, c)) == [1]


def test_a_selection_keeps_at_least_one_sensor():
    with pytest.raises(ValueError, match=r"cost_budget 1 cannot pay for even the cheapest sensor \(cost 2\)"):
        SelectionConstraints(costs=[2.0, 3.0], cost_budget=1.0)
    c = SelectionConstraints(costs=[2.0, 3.0, 0.5], cost_budget=0.5)
    assert c.min_count == 1 and c.min_cost == 0.5 and kept(c.cheapest_selection()) == [2]
    assert kept(constrained_top_k(torch.tensor([1.0, 0.9, 0.0]), None, c)) == [2]
    with pytest.raises(ValueError, match="no candidate sensor is left"):
        constrained_top_k(torch.rand(3), 2, c, candidates=torch.zeros(3, dtype=torch.bool))


def test_the_solver_view_is_a_read_only_copy_with_the_region_arithmetic():
    c = SelectionConstraints(costs=[1.0, 3.0, 2.0, 5.0], regions=["a", "a", "b", "b"],
                             min_per_region={"b": 2}, protected=[1])
    a = c.arrays(4)
    assert a.costs.tolist() == [1.0, 3.0, 2.0, 5.0] and a.budget is None
    assert a.labels == ("a", "b") and a.codes.tolist() == [0, 0, 1, 1] and a.minima.tolist() == [0, 2]
    assert a.protected.tolist() == [False, True, False, False]
    assert a.deficits(a.protected).tolist() == [0, 2]
    d, picks, extra = a.completion(a.protected, np.ones(4, dtype=bool), a.costs)
    assert d.tolist() == [0, 2] and [(j, idx.tolist()) for j, idx in picks] == [(1, [2, 3])] and extra is None
    for arr in (a.costs, a.codes, a.minima, a.protected):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    assert c.costs.tolist() == [1.0, 3.0, 2.0, 5.0] and c.protected == [1]   # the constraints are untouched
    with pytest.raises(ValueError, match="built for 4 sensors"):
        c.arrays(5)
