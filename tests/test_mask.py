"""Tests for dynst_pyg.selection.SensorMask."""
from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynst_pyg.selection.mask import MASK_FORMAT_VERSION, SensorMask


# --------------------------------------------------------------------------- basics
def test_from_indices_sorts_and_derives():
    m = SensorMask.from_indices(torch.tensor([4, 0, 2]), 6, method="manual")
    assert m.keep.tolist() == [0, 2, 4]
    assert m.num_nodes == 6 and m.num_kept == 3 and m.num_pruned == 3
    assert m.sparsity == pytest.approx(0.5)
    assert m.bool_mask.tolist() == [True, False, True, False, True, False]
    assert m.pruned.tolist() == [1, 3, 5]
    assert len(m) == 3
    assert repr(m) == "SensorMask(kept=3/6, sparsity=0.500, method='manual')"


def test_from_indices_accepts_lists_and_numpy():
    a = SensorMask.from_indices([3, 1], 5)
    b = SensorMask.from_indices(np.array([1, 3]), 5)
    assert a == b and hash(a) == hash(b)


def test_from_bool_roundtrip():
    b = torch.tensor([True, False, True, True])
    m = SensorMask.from_bool(b)
    assert m.keep.tolist() == [0, 2, 3]
    assert torch.equal(m.bool_mask, b)


def test_immutable_and_accessors_return_copies():
    m = SensorMask.from_indices([0, 2], 4, scores=torch.tensor([1., 2., 3., 4.]),
                                sensor_ids=["a", "b", "c", "d"], meta={"seed": 1})
    with pytest.raises(AttributeError):
        m.keep = torch.tensor([1])
    with pytest.raises(AttributeError):
        m.num_nodes = 3
    k = m.keep
    k[0] = 3
    s = m.scores
    s[0] = 100.0
    ids = m.sensor_ids
    ids[0] = "zzz"
    meta = m.meta
    meta["seed"] = 2
    assert m.keep.tolist() == [0, 2]
    assert m.scores[0].item() == 1.0
    assert m.sensor_ids[0] == "a"
    assert m.meta == {"seed": 1}
    assert copy.deepcopy(m) == m


def test_constructor_copies_caller_tensors():
    keep = torch.tensor([2, 0])
    scores = torch.tensor([0.1, 0.2, 0.3])
    m = SensorMask(keep, 3, scores=scores)
    keep[0] = 1
    scores[0] = 9.0
    assert m.keep.tolist() == [0, 2]
    assert m.scores[0].item() == pytest.approx(0.1)


def test_pickle_roundtrip():
    m = SensorMask.from_scores(torch.tensor([0.3, 0.1, 0.2]), budget=2, sensor_ids=["x", "y", "z"])
    assert pickle.loads(pickle.dumps(m)) == m


# --------------------------------------------------------------------------- from_scores
def test_from_scores_sparsity_and_budget():
    s = torch.tensor([0.1, 0.9, 0.5, 0.7])
    m = SensorMask.from_scores(s, sparsity=0.5)
    assert m.keep.tolist() == [1, 3]
    assert m.method == "scores"
    assert torch.equal(m.scores, s)
    assert SensorMask.from_scores(s, budget=3).keep.tolist() == [1, 2, 3]
    assert SensorMask.from_scores(s, sparsity=0.0).num_kept == 4


def test_from_scores_207_half_matches_documented_count():
    m = SensorMask.from_scores(torch.rand(207), sparsity=0.5)
    assert m.num_kept == 104 and m.num_pruned == 103  # N - floor(s * N)


def test_from_scores_ties_lower_index_wins():
    s = torch.tensor([1.0, 2.0, 2.0, 2.0, 0.5])
    assert SensorMask.from_scores(s, budget=2).keep.tolist() == [1, 2]
    assert SensorMask.from_scores(torch.zeros(6), budget=3).keep.tolist() == [0, 1, 2]


def test_from_scores_protected_always_kept():
    s = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.0])
    m = SensorMask.from_scores(s, budget=3, protected=[4])
    assert m.keep.tolist() == [0, 1, 4]
    m = SensorMask.from_scores(s, budget=2, protected=torch.tensor([3, 4]))
    assert m.keep.tolist() == [3, 4]
    with pytest.raises(ValueError, match="protected"):
        SensorMask.from_scores(s, budget=1, protected=[3, 4])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40), st.data())
def test_from_scores_keeps_top_scores(scores, data):
    n = len(scores)
    budget = data.draw(st.integers(1, n))
    m = SensorMask.from_scores(torch.tensor(scores), budget=budget)
    assert m.num_kept == budget
    kept = set(m.keep.tolist())
    # every pruned sensor scores no higher than every kept one (float32 storage)
    s32 = torch.tensor(scores, dtype=torch.float32).tolist()
    worst_kept = min(s32[j] for j in kept)
    for i in range(n):
        if i not in kept:
            assert s32[i] <= worst_kept
            # ties: every kept sensor with the same score has a lower index
            if s32[i] == worst_kept:
                assert i > max(j for j in kept if s32[j] == s32[i])


# --------------------------------------------------------------------------- sensor ids
def test_from_sensor_ids_list_and_dataset_like():
    ids = ["717", "718", "719", "720"]
    m = SensorMask.from_sensor_ids(["720", "718"], ids)
    assert m.keep.tolist() == [1, 3]
    assert m.kept_sensor_ids == ["718", "720"]
    assert m.sensor_ids == ids

    class DS:
        sensor_id = ids

    assert SensorMask.from_sensor_ids(["717"], DS()).keep.tolist() == [0]


def test_from_sensor_ids_unknown_and_duplicates():
    ids = ["a", "b", "c"]
    with pytest.raises(ValueError, match="unknown sensor id.*'zz'"):
        SensorMask.from_sensor_ids(["a", "zz"], ids)
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        SensorMask.from_sensor_ids(["a", "a"], ids)
    with pytest.raises(ValueError, match="empty selection"):
        SensorMask.from_sensor_ids([], ids)
    with pytest.raises(ValueError, match="'reference' holds duplicate"):
        SensorMask.from_sensor_ids(["a"], ["a", "a"])


# --------------------------------------------------------------------------- set operations
def test_set_operations_and_jaccard():
    a = SensorMask.from_indices([0, 1, 2], 6, method="a")
    b = SensorMask.from_indices([2, 3], 6, method="b")
    assert (a & b).keep.tolist() == [2]
    assert (a | b).keep.tolist() == [0, 1, 2, 3]
    assert a.intersection(b) == a & b and a.union(b) == a | b
    assert a.jaccard(b) == pytest.approx(1 / 4)
    assert a.jaccard(a) == 1.0
    assert (a | b).method == "union"
    c = SensorMask.from_indices([5], 6)
    with pytest.raises(ValueError, match="empty selection"):
        a & c
    assert a.jaccard(c) == 0.0
    with pytest.raises(ValueError, match="num_nodes=7"):
        a | SensorMask.from_indices([0], 7)
    with pytest.raises(TypeError, match="'other'"):
        a.jaccard([0, 1])


def test_set_operations_refuse_different_sensor_ids():
    a = SensorMask.from_indices([0], 2, sensor_ids=["p", "q"])
    b = SensorMask.from_indices([1], 2, sensor_ids=["q", "p"])
    with pytest.raises(ValueError, match="different sensor ids"):
        a | b


def test_compose():
    a = SensorMask.from_indices([1, 3, 4, 7], 8, sensor_ids=list("abcdefgh"))
    inner = SensorMask.from_indices([0, 2], 4)
    c = a.compose(inner)
    assert c.keep.tolist() == [1, 4]
    assert c.num_nodes == 8 and c.kept_sensor_ids == ["b", "e"]
    with pytest.raises(ValueError, match="'inner'"):
        a.compose(SensorMask.from_indices([0], 5))


# --------------------------------------------------------------------------- save / load
def test_save_load_roundtrip(tmp_path):
    m = SensorMask.from_scores(torch.tensor([0.25, 0.5, 0.125, 1.0]), sparsity=0.5,
                               sensor_ids=["s0", "s1", "s2", "s3"], method="dynst",
                               meta={"seed": 3, "schedule": "iterative"})
    path = tmp_path / "mask.json"
    m.save(path)
    obj = json.loads(path.read_text())
    assert obj["format_version"] == MASK_FORMAT_VERSION
    assert obj["kept_sensor_ids"] == ["s1", "s3"]
    assert obj["keep"] == [1, 3] and obj["num_nodes"] == 4
    back = SensorMask.load(path)
    assert back == m
    assert SensorMask.load(str(path)) == m


def test_save_load_without_optional_fields(tmp_path):
    m = SensorMask.from_indices([0, 5], 9)
    m.save(tmp_path / "m.json")
    assert SensorMask.load(tmp_path / "m.json") == m


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=30), st.data())
def test_save_load_roundtrip_property(tmp_path_factory, scores, data):
    n = len(scores)
    budget = data.draw(st.integers(1, n))
    m = SensorMask.from_scores(torch.tensor(scores), budget=budget, meta={"b": budget})
    p = tmp_path_factory.mktemp("m") / "m.json"
    m.save(p)
    assert SensorMask.load(p) == m


def _write(tmp_path, obj, name="bad.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


@pytest.mark.parametrize("mutate, match", [
    (lambda o: o.update(format_version=99), "format_version"),
    (lambda o: o.pop("format_version"), "format_version"),
    (lambda o: o.pop("keep"), "'keep'"),
    (lambda o: o.update(keep=[1, 1]), "duplicate"),
    (lambda o: o.update(keep=[1, 9]), "outside the valid range"),
    (lambda o: o.update(keep=[]), "empty selection"),
    (lambda o: o.update(keep=[1.5]), "integer"),
    (lambda o: o.update(num_kept=3), "num_kept"),
    (lambda o: o.update(scores=[0.1, 0.2]), "scores"),
    (lambda o: o.update(scores=[0.1, None, 0.3, 0.4]), "finite"),
    (lambda o: o.update(sensor_ids=["a", "b", "c"]), "sensor_ids"),
    (lambda o: o.update(kept_sensor_ids=["a", "b"]), "kept_sensor_ids"),
    (lambda o: o.update(num_nodes=-4), "num_nodes"),
])
def test_load_rejects_invalid_content(tmp_path, mutate, match):
    good = SensorMask.from_scores(torch.tensor([0.1, 0.4, 0.3, 0.2]), budget=2,
                                  sensor_ids=["a", "b", "c", "d"]).to_dict()
    mutate(good)
    p = _write(tmp_path, good)
    before = p.read_bytes()
    with pytest.raises(ValueError, match=match):
        SensorMask.load(p)
    assert p.read_bytes() == before


def test_load_rejects_corrupt_and_missing(tmp_path):
    with pytest.raises(ValueError, match="corrupt"):
        SensorMask.load(_write(tmp_path, '{"format_version": 1, "keep": [0'))
    with pytest.raises(ValueError, match="JSON object"):
        SensorMask.load(_write(tmp_path, "[1, 2, 3]"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        SensorMask.load(tmp_path / "nope.json")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, exc, match", [
    (lambda: SensorMask.from_indices([0, 0], 3), ValueError, "duplicate index 0"),
    (lambda: SensorMask.from_indices([3], 3), ValueError, "index 3, outside"),
    (lambda: SensorMask.from_indices([-1], 3), ValueError, "index -1"),
    (lambda: SensorMask.from_indices([], 3), ValueError, "empty selection"),
    (lambda: SensorMask.from_indices([0], 0), ValueError, "^`num_nodes` must be a positive int, got 0$"),
    (lambda: SensorMask.from_indices([0], 2.0), TypeError, r"^`num_nodes` must be a positive int, got 2\.0$"),
    (lambda: SensorMask.from_indices(torch.tensor([0.0]), 2), TypeError,
     r"^`keep` must hold integer indices, got dtype torch\.float32$"),
    (lambda: SensorMask.from_indices(torch.tensor([[0]]), 2), ValueError, r"^`keep` must be 1-D, got shape \(1, 1\)$"),
    (lambda: SensorMask.from_indices([0], 2, scores=[1.0]), ValueError, "scores"),
    (lambda: SensorMask.from_indices([0], 2, sensor_ids=["a"]), ValueError, "sensor_ids"),
    (lambda: SensorMask.from_indices([0], 2, sensor_ids=["a", "a"]), ValueError, "duplicate id"),
    (lambda: SensorMask.from_indices([0], 2, method=""), TypeError, "method"),
    (lambda: SensorMask.from_indices([0], 2, meta={"x": object()}), ValueError, "meta"),
    (lambda: SensorMask.from_bool(torch.tensor([0, 1])), TypeError, "torch.bool"),
    (lambda: SensorMask.from_bool(torch.zeros(3, dtype=torch.bool)), ValueError, "empty selection"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, float("nan")]), budget=1), ValueError, "NaN"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, 0.2]), sparsity=1.0), ValueError, "sparsity"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, 0.2]), budget=3), ValueError, "budget"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, 0.2])), ValueError, "exactly one"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, 0.2]), budget=1, sparsity=0.5), ValueError,
     "exactly one"),
    (lambda: SensorMask.from_scores(torch.tensor([0.1, 0.2]), budget=1, protected=[2]), ValueError,
     "protected"),
])
def test_bad_input_raises_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_leaves_inputs_unchanged():
    scores = torch.tensor([0.1, float("nan"), 0.3])
    keep = torch.tensor([2, 2, 0])
    with pytest.raises(ValueError):
        SensorMask.from_scores(scores, budget=1)
    with pytest.raises(ValueError):
        SensorMask.from_indices(keep, 3)
    assert torch.isnan(scores[1]) and scores[0].item() == pytest.approx(0.1)
    assert keep.tolist() == [2, 2, 0]
    prot = [1]
    SensorMask.from_scores(torch.tensor([0.1, 0.0, 0.3]), budget=2, protected=prot)
    assert prot == [1]


# --------------------------------------------------------------------------- constraints in meta
from dynst_pyg.selection.constraints import SelectionConstraints


def test_constraints_travel_in_meta_and_json(tmp_path):
    c = SelectionConstraints(costs=[1.0, 2.0, 3.5, 4.0], cost_budget=6.0, regions=["a", "a", "b", "b"],
                             min_per_region=1, protected=[0])
    m = SensorMask.from_indices([0, 2], 4, method="qr", meta={"constraints": c.to_dict(), "seed": 1})
    assert m.constraints == c and m.kept_cost == 4.5
    d = m.to_dict()
    assert d["kept_cost"] == 4.5 and d["meta"]["constraints"]["cost_budget"] == 6.0
    m.save(tmp_path / "m.json")
    back = SensorMask.load(tmp_path / "m.json")
    assert back == m and back.constraints == c and back.kept_cost == 4.5
    # a mask without constraints (or without costs) has no kept cost and writes none
    plain = SensorMask.from_indices([1], 3)
    assert plain.kept_cost is None and "kept_cost" not in plain.to_dict()
    p = SensorMask.from_indices([1], 3, meta={"constraints": SelectionConstraints(protected=[1]).to_dict()})
    assert p.kept_cost is None and p.constraints.protected == [1]


def test_meta_constraints_are_validated():
    c = SelectionConstraints(costs=[1.0, 2.0, 3.5, 4.0], cost_budget=6.0, regions=["a", "a", "b", "b"],
                             min_per_region=1, protected=[0])
    with pytest.raises(ValueError, match=r"'keep' does not satisfy meta\['constraints'\]: region 'b' keeps 0"):
        SensorMask.from_indices([0, 1], 4, meta={"constraints": c.to_dict()})
    with pytest.raises(ValueError, match=r"meta\['constraints'\]: the constraints were built for 4 sensors"):
        SensorMask.from_indices([0], 5, meta={"constraints": c.to_dict()})
    with pytest.raises(ValueError, match=r"meta\['constraints'\]: `costs\[0\]` is -1.0"):
        SensorMask.from_indices([0, 2], 4, meta={"constraints": {**c.to_dict(), "costs": [-1.0, 1, 1, 1]}})
    d = SensorMask.from_indices([0, 2], 4, meta={"constraints": c.to_dict()}).to_dict()
    with pytest.raises(ValueError, match="'kept_cost' is 9.0 but the kept sensors cost 4.5"):
        SensorMask.from_dict({**d, "kept_cost": 9.0})
