"""Synthetic road network with planted redundant sensors (the embedded default dataset).

The generator gives tests and demos a case whose right answer is known: a fraction of
sensors are noisy linear mixes of their graph neighbours, so switching them off loses
(almost) nothing, and their indices are returned as ground truth in
``dataset.meta["redundant"]`` (with the mixing sources in ``meta["sources"]``).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import scipy.sparse as sp
import torch
from scipy.spatial import cKDTree

from ..data.dataset import SpatioTemporalDataset

#: Bounding box of the synthetic "city" in (lon, lat) degrees.
_LON = (-118.50, -118.20)
_LAT = (34.00, 34.25)


def synthetic_road_network(num_nodes: int = 100, num_steps: int = 2016, redundant_fraction: float = 0.3,
                           seed: int = 0, k_neighbors: int = 4, interval_minutes: int = 5,
                           noise: float = 0.02, redundant_noise: float = 0.05,
                           local: float = 0.15) -> SpatioTemporalDataset:
    """Generates a traffic-like speed series on a random geometric sensor graph.

    * Sensors lie uniformly in a box of (lon, lat); each links to its ``k_neighbors``
      nearest sensors in both directions, weighted ``exp(-(d / sigma)^2)``.
    * Speed = free-flow speed minus congestion; congestion follows morning and evening
      peaks (daily period) with a per-sensor intensity, plus a disturbance that diffuses
      along the edges (``z_{t+1} = rho * P z_t + eps``), a persistent local disturbance per
      sensor (AR(1), ``rho = 0.97``) and observation noise.
    * ``round(redundant_fraction * N)`` sensors are *planted* as redundant: each is a
      convex mix of 2-3 non-redundant neighbours plus white noise (never a copy of a single
      neighbour, which would be interchangeable with it).

    Args:
        num_nodes (int, optional): Sensors, 20 to 10,000 (default: ``100``).
        num_steps (int, optional): Time steps (default: ``2016``, 7 days of 5 minutes).
        redundant_fraction (float, optional): Share of planted redundant sensors in
            ``[0, 0.6]`` (default: ``0.3``).
        seed (int, optional): Seed; the output is a deterministic function of the
            arguments (default: ``0``).
        k_neighbors (int, optional): Nearest neighbours per sensor (default: ``4``).
        interval_minutes (int, optional): Step length (default: ``5``).
        noise (float, optional): Observation noise relative to the speed range (default: ``0.02``).
        redundant_noise (float, optional): White noise added to the planted mixes, relative to
            the speed range; larger than ``noise``, so a planted sensor is strictly less
            informative than its sources and the right answer is unique (default: ``0.05``).
        local (float, optional): Standard deviation of each sensor's own slowly varying
            disturbance (in congestion units, 1 = 55 % speed drop), the part of a sensor's
            signal that no neighbour observes (default: ``0.15``).

    Returns:
        SpatioTemporalDataset: ``series [T, N, 1]`` in mph; ``meta["redundant"]`` is the
        sorted LongTensor of planted sensors, ``meta["sources"]`` a dict from each
        planted sensor to its source sensors.
    """
    if not isinstance(num_nodes, int) or not 20 <= num_nodes <= 10_000:
        raise ValueError(f"`num_nodes` must be an integer in [20, 10000], got {num_nodes!r}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"`num_steps` must be an integer >= 2, got {num_steps!r}")
    if not 0.0 <= float(redundant_fraction) <= 0.6:
        raise ValueError(f"`redundant_fraction` must lie in [0, 0.6], got {redundant_fraction!r}")
    if not isinstance(k_neighbors, int) or not 1 <= k_neighbors < num_nodes:
        raise ValueError(f"`k_neighbors` must be an integer in [1, num_nodes), got {k_neighbors!r}")
    rng = np.random.default_rng(seed)
    N, T = num_nodes, num_steps

    # --- graph: symmetric kNN on the plane
    xy = rng.random((N, 2))
    tree = cKDTree(xy)
    dist, nbr = tree.query(xy, k=k_neighbors + 1)
    src = np.repeat(np.arange(N), k_neighbors)
    dst = nbr[:, 1:].reshape(-1)
    d = dist[:, 1:].reshape(-1)
    pairs = {}
    for a, b, dd in zip(src.tolist(), dst.tolist(), d.tolist()):
        pairs[(a, b)] = dd
        pairs[(b, a)] = dd
    keys = np.array(sorted(pairs), dtype=np.int64)
    dd = np.array([pairs[tuple(k)] for k in keys])
    sigma = dd.std() if dd.std() > 0 else 1.0
    w = np.exp(-((dd / sigma) ** 2))
    edge_index = torch.from_numpy(keys.T.copy())
    edge_weight = torch.from_numpy(w).float()
    lon = _LON[0] + xy[:, 0] * (_LON[1] - _LON[0])
    lat = _LAT[0] + xy[:, 1] * (_LAT[1] - _LAT[0])
    pos = torch.from_numpy(np.stack([lon, lat], 1)).float()

    # --- latent traffic on all sensors
    A = sp.csr_matrix((w, (keys[:, 0], keys[:, 1])), shape=(N, N))
    deg = np.asarray(A.sum(1)).ravel()
    P = sp.diags(1.0 / np.maximum(deg, 1e-12)) @ A
    steps_per_day = max(1, int(round(1440 / interval_minutes)))
    tod = (np.arange(T) % steps_per_day) / steps_per_day * 24.0
    day = np.arange(T) // steps_per_day
    weekend = ((day % 7) >= 5).astype(float)
    peaks = np.exp(-0.5 * ((tod - 8.0) / 1.2) ** 2) + 0.8 * np.exp(-0.5 * ((tod - 17.5) / 1.6) ** 2)
    peaks = peaks * (1.0 - 0.6 * weekend)
    intensity = rng.uniform(0.2, 1.0, N)
    # spatially smooth the intensity so neighbouring sensors congest together
    for _ in range(2):
        intensity = 0.5 * intensity + 0.5 * (P @ intensity)
    free_flow = rng.uniform(55.0, 70.0, N)
    z = np.zeros((T, N))
    rho = 0.9
    eps = rng.normal(0.0, 0.15, (T, N))
    for t in range(1, T):
        z[t] = rho * (P @ z[t - 1]) + eps[t]
    # local incidents: a slowly varying disturbance per sensor that its neighbours do not see,
    # so an observed (non-redundant) sensor carries information no other sensor has
    u = np.zeros((T, N))
    rho_u = 0.97
    eta = rng.normal(0.0, local * np.sqrt(1 - rho_u ** 2), (T, N))
    for t in range(1, T):
        u[t] = rho_u * u[t - 1] + eta[t]
    congestion = np.clip(peaks[:, None] * intensity[None, :] + 0.25 * z + u, 0.0, 1.2)
    speed = free_flow[None, :] * (1.0 - 0.55 * congestion)
    speed = speed + rng.normal(0.0, noise * 60.0, (T, N))

    # --- planted redundant sensors: convex mixes of non-redundant neighbours
    target = int(round(float(redundant_fraction) * N))
    nbrs = [[] for _ in range(N)]
    for a, b in keys.tolist():
        nbrs[a].append(b)
    status = np.zeros(N, dtype=np.int8)  # 0 free, 1 redundant, 2 source (must stay observed)
    sources: dict[int, list[int]] = {}
    for i in rng.permutation(N).tolist():
        if len(sources) >= target:
            break
        if status[i] != 0:
            continue
        cand = [j for j in nbrs[i] if status[j] != 1]
        # at least two sources: a noisy copy of ONE neighbour is interchangeable with it,
        # so which of the two is "redundant" would not be a well-defined right answer
        if len(cand) < 2:
            continue
        m = int(min(len(cand), rng.integers(2, 4)))
        src_i = sorted(rng.choice(cand, size=m, replace=False).tolist())
        status[i] = 1
        for j in src_i:
            status[j] = 2
        sources[i] = src_i
    for i, src_i in sources.items():
        mix = rng.dirichlet(np.ones(len(src_i)))
        speed[:, i] = speed[:, src_i] @ mix + rng.normal(0.0, redundant_noise * 60.0, T)
    speed = np.clip(speed, 1.0, 80.0)

    redundant = torch.tensor(sorted(sources), dtype=torch.long)
    return SpatioTemporalDataset(
        torch.from_numpy(speed).float().unsqueeze(-1), edge_index, edge_weight, pos=pos,
        sensor_id=[f"syn{i:05d}" for i in range(N)], interval_minutes=interval_minutes,
        start=datetime(2024, 1, 1), null_value=None, name="synthetic", feature_names=["speed"],
        meta={"redundant": redundant, "sources": {int(k): v for k, v in sorted(sources.items())},
              "seed": seed, "redundant_fraction": float(redundant_fraction)},
    )
