"""Accuracy against sparsity: result rows (one per run) read from JSON and drawn as one line per selector."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["load_tradeoff_rows", "plot_tradeoff"]


def load_tradeoff_rows(json_path_or_rows: Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]],
                                                Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Result rows (one dict per run) as a list of dicts.

    Args:
        json_path_or_rows (str, Path, list of dict or dict): A JSON file holding a list of
            rows or an object with the rows under ``"rows"``; or such a list / object.

    Returns:
        list of dict: New dicts (the caller's rows are not modified).

    Raises:
        FileNotFoundError: if the path does not exist (the message says how to produce it).
        ValueError, TypeError: if the content is not a list of rows.
    """
    obj: Any = json_path_or_rows
    if isinstance(obj, (str, os.PathLike)):
        p = Path(obj)
        if not p.is_file():
            raise FileNotFoundError(f"'json_path_or_rows': no such file {str(p)!r} (run "
                                    "`python benchmarks/sparsity_tradeoff.py --out FILE.json` to produce it)")
        with open(p) as fh:
            obj = json.load(fh)
    if isinstance(obj, Mapping):
        if "rows" not in obj:
            raise ValueError("'json_path_or_rows': a JSON object must hold the benchmark rows under the key "
                             f"'rows'; found keys {sorted(obj)[:10]}")
        obj = obj["rows"]
    try:
        rows = [dict(r) for r in obj]
    except (TypeError, ValueError):
        raise TypeError("'json_path_or_rows' must be a JSON path, a list of row dicts, or a dict with 'rows'") \
            from None
    return rows


def _row_label(row: Mapping[str, Any]) -> str:
    sel = str(row.get("selector", "?"))
    sched = row.get("schedule")
    if sched in (None, "", "-", "none", "None") or str(sched) in sel:
        return sel
    return f"{sel}-{sched}"


def plot_tradeoff(
    json_path_or_rows: Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]], Mapping[str, Any]],
    metric: str = "mae",
    *,
    dataset: Optional[str] = None,
    model: Optional[str] = None,
    target: Optional[str] = None,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    figsize: Tuple[float, float] = (6.5, 4.5),
) -> Tuple[Figure, np.ndarray]:
    r"""Forecast error vs sparsity, one line per selector, mean ± standard deviation over seeds.

    Rows are dicts with the keys ``dataset``, ``model``, ``selector``, ``schedule``,
    ``sparsity``, ``target``, ``seed`` and the metric (``mae``, ...). A selector's label is
    ``selector`` or ``selector-schedule`` when a schedule is given. Rows of a ``"dense"`` selector, if
    present, are drawn as a dashed horizontal reference line. Rows for several
    (dataset, model, target) combinations give one panel each; the filters below select one.

    Args:
        json_path_or_rows (str, Path, list of dict or dict): A JSON file (a list of rows or
            ``{"rows": [...]}``) or the rows themselves.
        metric (str, optional): Row key to plot on the y axis. (default: :obj:`"mae"`)
        dataset (str, optional): Keep only rows of this dataset. (default: all)
        model (str, optional): Keep only rows of this model. (default: all)
        target (str, optional): Keep only rows of this output mode (``"all"``/``"kept"``).
            (default: all)
        ax (Axes, optional): Axes to draw on (only when a single panel results).
            (default: a new figure)
        title (str, optional): Title of a single panel. (default: ``"dataset, model, target=..."``)
        figsize (tuple, optional): Size of one panel in inches. (default: :obj:`(6.5, 4.5)`)

    Returns:
        (Figure, ndarray of Axes): one axes per (dataset, model, target) combination.

    Raises:
        ValueError: if no row is left after filtering, or rows lack the needed keys.
    """
    rows = load_tradeoff_rows(json_path_or_rows)
    if not isinstance(metric, str) or not metric:
        raise TypeError(f"'metric' must be a row key such as 'mae', got {metric!r}")
    need = ("selector", "sparsity", metric)
    for i, r in enumerate(rows):
        missing = [k for k in need if k not in r]
        if missing:
            raise ValueError(f"'json_path_or_rows': row {i} lacks the key(s) {missing} (has {sorted(r)})")
    sel = [r for r in rows
           if (dataset is None or r.get("dataset") == dataset)
           and (model is None or r.get("model") == model)
           and (target is None or r.get("target") == target)]
    if not sel:
        combos = sorted({(str(r.get("dataset")), str(r.get("model")), str(r.get("target"))) for r in rows})
        raise ValueError(f"no rows left after filtering dataset={dataset!r}, model={model!r}, target={target!r}; "
                         f"the rows hold (dataset, model, target) = {combos}")
    panels: Dict[Tuple[str, str, str], List[Dict[str, Any]]] = defaultdict(list)
    for r in sel:
        panels[(str(r.get("dataset", "?")), str(r.get("model", "?")), str(r.get("target", "?")))].append(r)
    keys = sorted(panels)

    import matplotlib.pyplot as plt

    if ax is not None:
        if len(keys) > 1:
            raise ValueError(f"'ax' given but the rows hold {len(keys)} (dataset, model, target) combinations "
                             f"{keys}; filter with dataset=/model=/target= or leave ax=None")
        fig, axes = ax.figure, np.array([ax])
    else:
        fig, axes_ = plt.subplots(1, len(keys), figsize=(figsize[0] * len(keys), figsize[1]), layout="constrained",
                                  squeeze=False)
        axes = axes_[0]
    any_seeds = False
    for a, key in zip(axes, keys):
        groups: Dict[str, Dict[float, List[float]]] = defaultdict(lambda: defaultdict(list))
        dense_vals: List[float] = []
        for r in panels[key]:
            v = r[metric]
            if v is None or not np.isfinite(float(v)):
                continue
            if str(r.get("selector")) == "dense":
                dense_vals.append(float(v))
                continue
            groups[_row_label(r)][float(r["sparsity"])].append(float(v))
        markers = "osD^vP*Xh<>"
        any_seeds = any_seeds or any(len(v) > 1 for g in groups.values() for v in g.values())
        for i, lab in enumerate(sorted(groups, key=lambda t: (not t.startswith("dynst"), t))):
            xs = sorted(groups[lab])
            mean = np.array([np.mean(groups[lab][x]) for x in xs])
            std = np.array([np.std(groups[lab][x]) if len(groups[lab][x]) > 1 else 0.0 for x in xs])
            nseeds = max(len(groups[lab][x]) for x in xs)
            a.errorbar(np.array(xs) * 100, mean, yerr=std, marker=markers[i % len(markers)], markersize=5,
                       capsize=3, linewidth=1.5 if lab.startswith("dynst") else 1.1,
                       label=f"{lab} ({nseeds} seeds)" if nseeds > 1 else lab)
        if dense_vals:
            a.axhline(float(np.mean(dense_vals)), color="black", linestyle="--", linewidth=1.0,
                      label="dense (all sensors)")
        a.set_xlabel("sparsity (% of sensors removed)")
        a.set_ylabel(f"test {metric.upper()}")
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
        ds_name, mdl, tgt = key
        a.set_title(title if (title is not None and len(keys) == 1) else f"{ds_name}, {mdl}, target={tgt}",
                    fontsize=10)
    if any_seeds:
        fig.text(0.01, 0.005, "error bars: ± 1 std over seeds", fontsize=7, color="#555555")
    return fig, axes
