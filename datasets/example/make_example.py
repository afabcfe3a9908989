"""Writes the example dataset folder next to this script (standard library only).

Six speed sensors (km/h) on a small two-way road network, 300 steps of 5 minutes
(2024-03-04 00:00 to 2024-03-05 00:55): a free-flow speed per sensor with a morning and an
evening rush-hour dip, plus noise. Sensor S4 reads almost the mean of its neighbours S3 and
S5 (a redundant sensor that pruning should find). Six readings are missing (empty cells);
``dataset.json`` sets ``null_value`` to 0, so they are stored as 0 and left out of metrics.

    python datasets/example/make_example.py
"""

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SENSORS = ["S1", "S2", "S3", "S4", "S5", "S6"]
FREE_FLOW = [92.0, 88.0, 75.0, 0.0, 70.0, 55.0]  # S4 is derived from S3 and S5
LOCATIONS = [(56.1500, 10.1800), (56.1520, 10.1950), (56.1545, 10.2100), (56.1560, 10.2230),
             (56.1580, 10.2370), (56.1470, 10.2150)]
ROADS = [("S1", "S2", 1050.0), ("S2", "S3", 980.0), ("S3", "S4", 830.0), ("S4", "S5", 900.0),
         ("S3", "S6", 1010.0)]
MISSING = [(40, "S2"), (41, "S2"), (130, "S5"), (200, "S1"), (201, "S6"), (280, "S3")]
STEPS = 300


def rush(t: datetime) -> float:
    """Speed factor in (0, 1]: dips around 08:00 and 16:30."""
    h = t.hour + t.minute / 60.0
    return 1.0 - 0.45 * math.exp(-((h - 8.0) / 1.0) ** 2) - 0.35 * math.exp(-((h - 16.5) / 1.3) ** 2)


def main(out: Path = HERE) -> None:
    """Writes readings.csv, edges.csv, locations.csv and dataset.json into ``out``."""
    rng = random.Random(0)
    start = datetime(2024, 3, 4)
    lines = ["time," + ",".join(SENSORS)]
    for step in range(STEPS):
        t = start + timedelta(minutes=5 * step)
        v = [ff * rush(t) + rng.gauss(0.0, 2.0) for ff in FREE_FLOW]
        v[3] = 0.5 * (v[2] + v[4]) + rng.gauss(0.0, 0.5)
        cells = [f"{x:.1f}" for x in v]
        for s, sid in MISSING:
            if s == step:
                cells[SENSORS.index(sid)] = ""
        lines.append(t.strftime("%Y-%m-%d %H:%M") + "," + ",".join(cells))
    (out / "readings.csv").write_text("\n".join(lines) + "\n")
    edges = ["from,to,distance"]
    for a, b, d in ROADS:  # two-way roads: both directions
        edges += [f"{a},{b},{d:g}", f"{b},{a},{d:g}"]
    (out / "edges.csv").write_text("\n".join(edges) + "\n")
    locs = ["sensor_id,lat,lon"] + [f"{s},{lat:.4f},{lon:.4f}" for s, (lat, lon) in zip(SENSORS, LOCATIONS)]
    (out / "locations.csv").write_text("\n".join(locs) + "\n")
    meta = {"name": "example", "interval_minutes": 5, "null_value": 0}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
