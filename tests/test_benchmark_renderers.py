"""The benchmark renderers turn study JSON into README tables: tiny exact cases of their rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def render():
    return load("render_selection_study")


def cell(selector, seed, mae, kept, val=None, **cfg):
    m = {"mae": mae, "mae_h3": mae, "mae_h6": mae, "mae_h12": mae}
    return {"config": {"dataset": "los-loop", "backbone": "stid", "sparsity": 0.5, "target": "all",
                       "selector": selector, "seed": seed, "lr": 2e-3, **cfg},
            "test": m, "dense_test": {**m, "mae": 1.0}, "val": {"mae": mae if val is None else val},
            "kept": kept, "finetune_epochs_run": 6}


def dense(seeds):
    m = {"mae": 1.0, "mae_h3": 1.0, "mae_h6": 1.0, "mae_h12": 1.0}
    return {("los-loop", "stid", s): {"test": m, "epochs_run": 20,
                                       "reference_test": {"persistence": m, "time_of_day": m}} for s in seeds}


def test_a_baseline_with_dynsts_exact_sensors_is_named_the_same_method(render):
    dyn = "dynst-iterative-rw1-gw0.1-mw0.8-se3"
    cells = []
    for s in range(3):
        cells += [cell(dyn, s, 1.0 + 0.01 * s, [0, 1]), cell("backward-elimination", s, 1.0 + 0.01 * s, [0, 1]),
                  cell("qr", s, 1.2 + 0.01 * s, [0, 2]), cell("random", s, 1.3, [1, 3])]
    g = render.grouped(cells)
    key = ("los-loop", "stid", 0.5, "all", "")
    table, summary = render.grid_table(key, g[key], dense(range(3)))
    assert summary["same_mask"] == ["backward-elimination"]
    assert summary["best_baseline"] == "qr"          # not the identical twin, whose difference is 0
    assert summary["diff"] == pytest.approx(-0.2)
    assert summary["every_ahead"]
    assert "keeps exactly the sensors of backward-elimination" in table
    # one seed where the masks differ: no longer the same method, and it is the best baseline
    cells[1] = cell("backward-elimination", 0, 0.9, [0, 3])
    _, summary = render.grid_table(key, render.grouped(cells)[key], dense(range(3)))
    assert summary["same_mask"] == [] and summary["best_baseline"] == "backward-elimination"


def test_the_finetune_lr_table_sets_the_sweep_beside_the_grids_default_rate(render):
    dyn = "dynst-iterative-rw1-gw0.1-mw0.8-se3"
    grid = [cell(dyn, s, 9.0, [0], val=3.0 + s) for s in range(3)] + [cell(dyn, 7, 9.0, [0], val=100.0)]
    grid.append(cell(dyn, 0, 9.0, [0], val=50.0, backbone="gwnet"))  # another backbone: not pooled with stid
    sweep = [cell(f"{dyn}-ftlr0.0005", s, 9.0, [0], val=4.0 + s, finetune_lr=5e-4) for s in range(3)]
    sweep.append(cell(dyn.replace("rw1", "rw0"), 0, 9.0, [0], val=0.5))  # a DynST weight sweep cell
    text = render.finetune_lr_table(sweep, grid)
    rows = [r for r in text.splitlines() if r.startswith("| Los-loop")]
    assert len(rows) == 2                               # the rw0 cell belongs to the other table
    vs = cell(f"{dyn}-vs", 0, 9.0, [0], val=2.5, finetune_validate_start=True)
    assert "| lr 0.002, start validated as epoch 0 | 2.500 ± 0.000 |" in render.finetune_lr_table(sweep + [vs], grid)
    assert "-vs" not in render.sweep_table(sweep + [vs], grid, None)
    assert "-vs" not in render.sweep_table(sweep, grid + [vs], None)   # nor a grid cell of that protocol
    assert "| lr 0.002 (the grid's) | 4.000 ± 1.000 |" in rows[0]   # seed 7 is not a sweep seed: left out
    assert all("| stid |" in r for r in rows)
    assert "| lr 0.0005 | 5.000 ± 1.000 |" in rows[1]
    # and the DynST weight-sweep table does not list the learning-rate cells
    assert "ftlr" not in render.sweep_table(sweep, grid, None)
    assert render.finetune_lr_table([], grid) == "(not run)"
    # a Graph WaveNet variant run on seed 0 only is set beside the grid's Graph WaveNet seed 0 only,
    # although the STID variants ran seeds 0-2 and the grid has Graph WaveNet seed 1
    gw = [cell(f"{dyn}-ftlr0.0002", 0, 9.0, [0], val=3.5, finetune_lr=2e-4, backbone="gwnet")]
    grid.append(cell(dyn, 1, 9.0, [0], val=60.0, backbone="gwnet"))
    rows = [r for r in render.finetune_lr_table(sweep + gw, grid).splitlines() if "| gwnet |" in r]
    assert "| lr 0.002 (the grid's) | 50.000 ± 0.000 | 6.0 | 1 |" in rows[0]


def sp_cell(policy, seed, reach_cpu, sampler=None):
    """A sample-pruning cell whose validation MAE reaches 1.0 at ``reach_cpu`` CPU seconds (None: never)."""
    epochs = [{"val_mae": 2.0, "cpu_seconds": 1.0}]
    epochs.append({"val_mae": 1.0 if reach_cpu is not None else 1.5, "cpu_seconds": reach_cpu or 50.0})
    return {"config": {"dataset": "aarhus", "backbone": "stid", "seed": seed, "policy": policy,
                       "sampler": sampler or {"ratio": 0.5, "delta": 0.875, "alpha": 1.0}},
            "epochs": epochs, "best_val_mae": min(e["val_mae"] for e in epochs), "total_seconds": 60.0,
            "total_steps": 100, "epochs_run": 2}


def test_the_sweep_changes_a_default_only_when_a_variant_beats_it_on_every_seed(tmp_path):
    import json

    sp = load("render_sample_pruning")
    mains = [sp_cell("full", s, 10.0) for s in range(3)] + [sp_cell("stprune", s, 8.0) for s in range(3)]
    fast = {"ratio": 0.3, "delta": 0.875, "alpha": 1.0}
    flaky = {"ratio": 0.7, "delta": 0.875, "alpha": 1.0}
    sweep = [sp_cell("stprune", s, 5.0 + 0.1 * s, fast) for s in range(3)]
    sweep += [sp_cell("stprune", 0, 1.0, flaky), sp_cell("stprune", 1, None, flaky), sp_cell("stprune", 2, 1.0, flaky)]
    for i, c in enumerate(sweep):
        (tmp_path / f"c{i}.json").write_text(json.dumps(c))
    g = sp.sweep_summary(str(tmp_path), mains)["groups"]["aarhus/stid"]
    rows = {r["ratio"]: r for r in g["variants"]}
    assert rows[0.5]["default"] and rows[0.5]["ttt_ratio"]["mean"] == pytest.approx(0.8)
    assert rows[0.3]["vs_default"]["diff"] == pytest.approx(-0.29)
    assert rows[0.7]["reached"] == 2 and "vs_default" not in rows[0.7]   # fastest, but missed a seed
    assert g["chosen"] == fast
    # the same variant, ahead on two seeds only and behind on the third: the default stays
    (tmp_path / "c2.json").write_text(json.dumps(sp_cell("stprune", 2, 9.5, fast)))
    g = sp.sweep_summary(str(tmp_path), mains)["groups"]["aarhus/stid"]
    assert g["chosen"] == {"ratio": 0.5, "delta": 0.875, "alpha": 1.0}
    assert "seeds 0, 1, 2" in sp.markdown_sweep({"groups": {"aarhus/stid": g}})


def test_the_headline_protocol_is_chosen_on_validation_not_test(render):
    dyn = "dynst-iterative-rw1-gw0.1-mw0.8-se3"
    cells = []
    for s in range(3):
        # the validated start: better on validation, worse on test; the grid's: the other way round
        cells.append(cell(dyn, s, 1.0, [0], val=2.0))
        cells.append(cell(f"{dyn}-vs", s, 1.5, [0], val=1.9, finetune_validate_start=True))
    g = render.grouped(cells)
    assert set(g) == {("los-loop", "stid", 0.5, "all", ""),
                      ("los-loop", "stid", 0.5, "all", "start validated as epoch 0")}
    assert all(dyn in sels for sels in g.values())        # one base name under every protocol
    assert render.chosen_variants(g) == {("los-loop", "stid", 0.5, "all"): "start validated as epoch 0"}
    cells[-1]["val"]["mae"] = 9.0                           # now worse on validation for one seed
    assert render.chosen_variants(render.grouped(cells)) == {("los-loop", "stid", 0.5, "all"): ""}


def test_a_non_default_training_stride_is_a_group_of_its_own():
    sp = load("render_sample_pruning")
    cfg = {"dataset": "aarhus", "backbone": "stid", "data": {"resample": 3, "train_stride": 3}}
    assert sp.group_key({**cfg, "train_stride": 3}) == "aarhus/stid"
    assert sp.group_key({**cfg, "train_stride": 1}) == "aarhus stride 1/stid"
    assert sp.group_key(cfg) == "aarhus/stid"          # cells written before the field existed


def test_the_intro_sentences_quote_each_other_headline_under_its_chosen_protocol(render):
    def summary(diff, lo, hi, seeds):
        return {"vs_dense": 2.0, "vs_dense_sd": 0.5, "diff": diff, "lo": lo, "hi": hi, "seeds": seeds,
                "best_baseline": "qr", "same_mask": []}
    summaries = {("los-loop", "stid", 0.5, "all", ""): summary(-0.1, -0.2, -0.05, 5),  # the statement's own
                 ("aarhus", "stid", 0.5, "all", ""): summary(-0.1, -0.2, -0.05, 4),
                 ("aarhus", "stid", 0.5, "all", "vs"): summary(-0.3, -0.4, -0.2, 3),
                 ("aarhus", "stid", 0.3, "all", ""): summary(-0.3, -0.4, -0.2, 3),    # not the 50 % headline
                 ("los-loop", "gwnet", 0.5, "all", ""): summary(0.04, 0.02, 0.06, 2)}
    text = render.other_statements(summaries, {("aarhus", "stid", 0.5, "all"): "vs"})
    assert "Los-loop with STID" not in text
    assert "On Aarhus with STID (3 seeds, vs, chosen on validation)" in text and "4 seeds" not in text
    assert "-0.300 MAE [95 % CI -0.400, -0.200] from qr: ahead of it" in text
    assert "Los-loop with Graph WaveNet (2 seeds, plain fine-tune)" in text and "behind it" in text
    assert text.count("On ") == 2


def test_the_weight_sweep_compares_each_configuration_with_the_default_on_the_seeds_both_ran(render, tmp_path):
    import json

    dyn = "dynst-iterative-rw1-gw0.1-mw0.8-se3"
    rw0 = "dynst-iterative-rw0-gw0.1-mw0.8-se3"
    # the default on seeds 0-1 (one easy, one hard seed), rw0 on the easy seed only: rw0's mean (1.2) is
    # below the default's (1.5), but on the one seed both ran it is worse (1.2 against 1.0)
    grid = [cell(dyn, 0, 9.0, [0], val=1.0), cell(dyn, 1, 9.0, [0], val=2.0)]
    sweep = [cell(rw0, 0, 9.0, [1], val=1.2), cell(dyn, 1, 9.0, [0], val=2.0)]
    path = tmp_path / "choice.json"
    table = render.sweep_table(sweep, grid, path)
    choice = json.loads(path.read_text())["choices"]
    assert [c["chosen"] for c in choice] == [dyn]
    assert choice[0]["candidates"][rw0]["minus_default"] == pytest.approx(0.2)
    assert "+0.200 (seeds 0)" in table
    # better on the seed both ran: now it is chosen
    sweep[0] = cell(rw0, 0, 9.0, [1], val=0.9)
    render.sweep_table(sweep, grid, path)
    assert json.loads(path.read_text())["choices"][0]["chosen"] == rw0


def test_a_baseline_that_reaches_the_target_where_st_prune_never_does_is_named_ahead():
    sp = load("render_sample_pruning")
    never = {"ttt_cpu": {"paired_diff": None}}
    g = {"all_beat_references": True, "stprune_minus_baseline": {"random": never, "equal": never},
         "policies": {"stprune": {"seeds": [0, 1, 2], "reached": 0, "ttt_cpu_ratio": None},
                      "random": {"seeds": [0, 1, 2], "reached": 3}, "equal": {"seeds": [0, 1, 2], "reached": 0}}}
    text = sp.verdict("synthetic/gwnet", g)
    assert "ST-Prune is **behind** it: random reached the target on 3/3 seeds, ST-Prune on none" in text
    assert text.count("behind") == 1                     # equal steps never reached it either: no ranking
    g["policies"]["stprune"]["reached"] = 1              # reached once (elsewhere): no such claim
    assert "behind" not in sp.verdict("synthetic/gwnet", dict(g, policies={**g["policies"], "stprune": {
        **g["policies"]["stprune"], "ttt_cpu_ratio": None}}))
