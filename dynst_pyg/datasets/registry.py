"""Datasets by name, and the summary table behind ``dynst-pyg datasets``."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable, Optional

from .aarhus import load_aarhus
from ..data.dataset import SpatioTemporalDataset
from .loaders import (FILES, DataFileMissing, data_root, load_los_loop, load_metr_la, load_pems04, load_pems08,
                      load_pems_bay, sha256sum)
from .synthetic import synthetic_road_network

LOADERS: dict[str, Callable[..., SpatioTemporalDataset]] = {
    "los-loop": load_los_loop,
    "metr-la": load_metr_la,
    "pems-bay": load_pems_bay,
    "pems04": load_pems04,
    "pems08": load_pems08,
    "aarhus": load_aarhus,
}

#: What the full-size datasets look like (for rows whose series file is not present).
KNOWN_SIZES = {"los-loop": (207, 2016), "metr-la": (207, 34272), "pems-bay": (325, 52116),
               "pems04": (307, 16992), "pems08": (170, 17856), "aarhus": (449, 17568)}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (``"synthetic"`` included)."""
    return ["synthetic", *LOADERS]


def load_dataset(name: str, root: Optional[str | os.PathLike] = None, **kwargs) -> SpatioTemporalDataset:
    """Loads a dataset by name, passing ``kwargs`` on to its loader.

    ``"synthetic"`` calls :func:`synthetic_road_network` (``root`` is ignored), the others
    their ``load_*`` function with ``root`` (e.g. ``load_dataset("aarhus",
    features=("speed", "vehicle_count"))``). A keyword the loader does not take raises a
    ValueError listing the ones it does.
    """
    key = name.lower().replace("_", "-")
    if key == "synthetic":
        loader: Callable[..., SpatioTemporalDataset] = synthetic_road_network
    elif key in LOADERS:
        loader = LOADERS[key]
    else:
        raise ValueError(f"unknown dataset {name!r}; expected one of {available_datasets()}")
    accepted = [p for p in inspect.signature(loader).parameters if p != "root"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"dataset {key!r} does not take the option(s) {unknown}; it takes {accepted or 'none'}")
    return loader(**kwargs) if key == "synthetic" else loader(root, **kwargs)


@dataclass
class DatasetRow:
    name: str
    sensors: Optional[int]
    steps: Optional[int]
    interval: str
    source: str
    checksums: str
    status: str


def dataset_summary(root: Optional[str | os.PathLike] = None, synthetic_nodes: int = 100) -> list[DatasetRow]:
    """One row per known dataset: size, interval, source and the checksum state of its files.

    ``checksums`` reads ``ok n/m`` (m files with a recorded sha256 present and matching),
    ``MISMATCH <file>`` or ``missing <files>``. ``status`` is ``loaded`` when the series
    could be read, else what is missing. The synthetic default is always listed.
    """
    root = data_root(root)
    rows = []
    syn = synthetic_road_network(num_nodes=synthetic_nodes)
    rows.append(DatasetRow("synthetic", syn.num_nodes, syn.num_steps, f"{syn.interval_minutes} min",
                           "generated (seed 0)", "n/a", f"embedded default; {len(syn.meta['redundant'])} planted redundant"))
    for name, cards in FILES.items():
        present, missing, bad = 0, [], []
        for c in cards:
            p = root / c.relpath
            if not p.is_file():
                missing.append(os.path.basename(c.relpath))
            elif c.sha256 is not None:
                if sha256sum(p) == c.sha256:
                    present += 1
                else:
                    bad.append(os.path.basename(c.relpath))
        checked = sum(1 for c in cards if c.sha256 is not None)
        if bad:
            chk = "MISMATCH " + ",".join(bad)
        elif missing:
            chk = f"ok {present}/{checked}; missing " + ",".join(missing)
        else:
            chk = f"ok {present}/{checked}"
        sensors, steps = KNOWN_SIZES[name]
        interval = "5 min"
        try:
            ds = LOADERS[name](root)
            sensors, steps, status = ds.num_nodes, ds.num_steps, "loaded"
            interval = f"{ds.interval_minutes} min"
        except DataFileMissing:
            status = "series missing (sizes are the published ones)"
        except Exception as exc:  # noqa: BLE001 - reported in the table, not hidden
            status = f"error: {exc}"
        rows.append(DatasetRow(name, sensors, steps, interval, cards[0].source, chk, status))
    return rows


def format_summary(rows: list[DatasetRow], root) -> str:
    """The summary as a fixed-width text table."""
    head = ("dataset", "sensors", "steps", "interval", "source", "checksums", "status")
    body = [(r.name, str(r.sensors or "-"), str(r.steps or "-"), r.interval, r.source, r.checksums, r.status) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"data root: {root}", line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    return "\n".join(out)
