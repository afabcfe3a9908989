"""Reading the per-sensor costs and regions of :class:`~dynst_pyg.selection.SelectionConstraints` from CSV files.

A costs file has the header ``sensor_id,cost``, a regions file ``sensor_id,region``; each
holds one row per sensor in any order. Errors name the file, the row and what was expected.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

__all__ = ["read_constraint_files"]

PathLike = Union[str, "os.PathLike[str]"]


def read_constraint_files(sensor_ids: Sequence[str], costs: Optional[PathLike] = None,
                          regions: Optional[PathLike] = None,
                          protected_ids: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The keyword arguments ``costs``, ``regions``, ``protected`` and ``num_nodes`` of
    :class:`~dynst_pyg.selection.SelectionConstraints`, read from the files (see
    :meth:`~dynst_pyg.selection.SelectionConstraints.from_csv`)."""
    if isinstance(sensor_ids, (str, bytes)) or not isinstance(sensor_ids, Iterable):
        raise TypeError(f"`sensor_ids` must be a sequence of str, got {type(sensor_ids).__name__}")
    ids = [str(s) for s in sensor_ids]
    lookup = {sid: i for i, sid in enumerate(ids)}
    if len(lookup) != len(ids):
        raise ValueError("`sensor_ids` must be unique")
    cost_values = None
    if costs is not None:
        cost_values = _read_keyed_csv(costs, "cost", lookup, _parse_cost)
    region_values = None
    if regions is not None:
        region_values = _read_keyed_csv(regions, "region", lookup, _parse_region)
    prot = None
    if protected_ids is not None:
        if isinstance(protected_ids, (str, bytes)):
            raise TypeError("`protected_ids` must be a sequence of sensor ids, got a single str")
        unknown = [str(p) for p in protected_ids if str(p) not in lookup]
        if unknown:
            raise ValueError(f"`protected_ids` holds unknown sensor id(s) {unknown[:5]}")
        prot = [lookup[str(p)] for p in protected_ids]
    return {"costs": cost_values, "regions": region_values, "protected": prot, "num_nodes": len(ids)}


def _parse_cost(text: str) -> float:
    v = float(text)  # ValueError -> reported by the caller
    if not math.isfinite(v) or v < 0:
        raise ValueError
    return v


def _parse_region(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text.strip()


def _read_keyed_csv(path: PathLike, column: str, lookup: Dict[str, int], parse: Callable[[str], Any]) -> list:
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{column}s file not found: {p!r}")
    expected = {"cost": "a finite number >= 0", "region": "a non-empty region label"}[column]
    values: List[Any] = [None] * len(lookup)
    first_row: Dict[str, int] = {}
    with open(p, "r", encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None or [h.strip().lower() for h in header] != ["sensor_id", column]:
            got = "an empty file" if header is None else repr(",".join(header))
            raise ValueError(f"{p}: row 1: expected the header 'sensor_id,{column}', got {got}")
        for r, row in enumerate(rows, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise ValueError(f"{p}: row {r}: expected 2 columns 'sensor_id,{column}', got {len(row)}")
            sid, raw = row[0].strip(), row[1]
            if sid not in lookup:
                raise ValueError(f"{p}: row {r}: unknown sensor id {sid!r} (not one of the {len(lookup)} sensor "
                                 f"ids of the data)")
            if sid in first_row:
                raise ValueError(f"{p}: row {r}: duplicate sensor id {sid!r} (first given on row {first_row[sid]})")
            first_row[sid] = r
            try:
                values[lookup[sid]] = parse(raw)
            except ValueError:
                raise ValueError(f"{p}: row {r}: expected {expected} for sensor {sid!r}, got {raw!r}") from None
    missing = [sid for sid, i in lookup.items() if values[i] is None]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{p}: missing {len(missing)} of {len(lookup)} sensors ({shown}); every sensor needs a row")
    return values
