"""Several selections of one network side by side: one sensor map per mask, and two masks with their overlap."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
from matplotlib.figure import Figure

from ..selection.mask import SensorMask
from .geo import _aspect, _auto_figsize
from .maps import PosLike, _check_same_network, _resolve_graph, _resolve_mask, plot_sensor_map

__all__ = ["plot_masks", "plot_mask_comparison"]


def plot_masks(
    dataset: PosLike,
    masks: Sequence[SensorMask],
    labels: Optional[Sequence[str]] = None,
    *,
    suptitle: Optional[str] = None,
    color_by_score: Union[bool, Sequence[bool]] = True,
    panel_size: Optional[Tuple[float, float]] = None,
    **kwargs: Any,
) -> Tuple[Figure, np.ndarray]:
    r"""Draws several masks of the same network side by side (one :func:`plot_sensor_map` each).

    Args:
        dataset (SpatioTemporalDataset, Data or Tensor): The network (see :func:`plot_sensor_map`).
        masks (sequence of SensorMask): The selections, all over the same ``N`` sensors.
        labels (sequence of str, optional): One panel title prefix per mask.
            (default: each mask's ``method``)
        suptitle (str, optional): Figure title. (default: :obj:`None`)
        color_by_score (bool or sequence of bool, optional): Colour kept sensors by score,
            for all masks or per mask (e.g. ``[True, False]`` when the second mask is a
            random selection whose scores mean nothing). (default: :obj:`True`)
        panel_size (tuple, optional): Size of one panel in inches. (default: chosen from the
            map's shape, 6 inches wide)
        **kwargs: Passed on to :func:`plot_sensor_map` (e.g. ``cmap``, ``show_edges``).

    Returns:
        (Figure, ndarray of Axes)
    """
    masks = list(masks)
    if not masks:
        raise ValueError("'masks' is empty: give at least one SensorMask")
    for i, m in enumerate(masks):
        if not isinstance(m, SensorMask):
            raise TypeError(f"'masks[{i}]' must be a SensorMask, got {type(m).__name__}")
    if labels is None:
        labels = [m.method for m in masks]
    labels = list(labels)
    if len(labels) != len(masks):
        raise ValueError(f"'labels' must have one entry per mask ({len(masks)}), got {len(labels)}")
    for bad in ("ax", "title"):
        if bad in kwargs:
            raise TypeError(f"'{bad}' cannot be passed to plot_masks (one panel per mask is created)")

    k = len(masks)
    if isinstance(color_by_score, bool):
        by_score = [color_by_score] * k
    else:
        by_score = [bool(v) for v in color_by_score]
        if len(by_score) != k:
            raise ValueError(f"'color_by_score' must be a bool or one bool per mask ({k}), got {len(by_score)}")
    net = _resolve_graph(dataset, kwargs.get("edge_index"))
    for m in masks:  # refuse a mask of another network before any figure is made
        _resolve_mask(m, net.pos.shape[0])
        _check_same_network(m, net)
    if panel_size is None:
        pos = net.pos
        dx, dy = np.ptp(pos[:, 0]) or 1e-6, np.ptp(pos[:, 1]) or 1e-6
        aspect = _aspect(pos, kwargs.get("geographic", True))
        panel_size = _auto_figsize(float(dx), float(dy), aspect, 6.0)

    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, k, figsize=(panel_size[0] * k, panel_size[1] + (0.4 if suptitle else 0.0)),
                             layout="constrained", squeeze=False)
    axes = axes[0]
    for ax, m, lab, col in zip(axes, masks, labels, by_score):
        plot_sensor_map(dataset, m, ax=ax, title=f"{lab}: kept {m.num_kept}/{m.num_nodes} ({m.sparsity:.0%} pruned)",
                        color_by_score=col, **kwargs)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return fig, axes


def plot_mask_comparison(
    dataset: PosLike,
    mask_a: SensorMask,
    mask_b: SensorMask,
    labels: Tuple[str, str] = ("DynST", "random"),
    **kwargs: Any,
) -> Tuple[Figure, np.ndarray]:
    r"""Two masks of the same network side by side, with their Jaccard overlap in the title.

    The Jaccard overlap is ``|kept_a ∩ kept_b| / |kept_a ∪ kept_b|`` (1 = same selection).

    Args:
        dataset (SpatioTemporalDataset, Data or Tensor): The network (see :func:`plot_sensor_map`).
        mask_a (SensorMask): Left panel.
        mask_b (SensorMask): Right panel; must cover the same ``N`` sensors.
        labels (tuple of str, optional): Names of the two masks.
            (default: :obj:`("DynST", "random")`)
        **kwargs: Passed on to :func:`plot_masks` / :func:`plot_sensor_map`.

    Returns:
        (Figure, ndarray of two Axes)
    """
    for name, m in (("mask_a", mask_a), ("mask_b", mask_b)):
        if not isinstance(m, SensorMask):
            raise TypeError(f"'{name}' must be a SensorMask, got {type(m).__name__}")
    if mask_a.num_nodes != mask_b.num_nodes:
        raise ValueError(f"'mask_a' covers {mask_a.num_nodes} sensors but 'mask_b' covers {mask_b.num_nodes}; "
                         "compare masks of the same network")
    labels = tuple(labels)
    if len(labels) != 2 or not all(isinstance(v, str) for v in labels):
        raise ValueError(f"'labels' must be two strings, got {labels!r}")
    jac = mask_a.jaccard(mask_b)
    both = int((mask_a.bool_mask & mask_b.bool_mask).sum())
    sup = (f"{labels[0]} vs {labels[1]}: Jaccard overlap of the kept sets = {jac:.2f} "
           f"({both} sensors kept by both)")
    return plot_masks(dataset, [mask_a, mask_b], labels=list(labels), suptitle=sup, **kwargs)
