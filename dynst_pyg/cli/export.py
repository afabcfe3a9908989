"""``dynst-pyg export``: a run's served model as a stand-alone program plus its input/output contract.

The program (``model.pt2``, :func:`torch.export.save`; ``model.ts``, TorchScript, where
:func:`torch.export.export` cannot trace the backbone) takes one tensor, the normalised
inputs ``x [B, T_in, K, F_in]`` of the kept sensors in ``contract.json``'s order, and returns
normalised forecasts ``[B, T_out, M, F_out]`` (``M`` = the kept sensors, or every sensor
with ``target="all"``). Every weight and the sub-graph are constants of the program: for a
backbone that diffuses over the graph (Graph WaveNet, DCRNN) its supports are computed once at
export and stored (dense, or as an edge list below :data:`EDGE_LIST_DENSITY`; ``"graph":
"supports baked in"`` in the contract), so a call does no graph work. The program needs neither
``dynst_pyg`` nor PyG to run; ``forecast = out * std + mean`` with the scaler of ``contract.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn

from ..models.supports import EdgeListSupport, support_density
from .run_folder import atomic_write
from .serve import Forecaster

__all__ = ["export_served", "export_run", "compile_aot", "AOT_PROGRAM", "CONTRACT", "CONTRACT_VERSION",
           "EDGE_LIST_DENSITY", "BAKED", "REBUILT"]

#: Name of the contract file next to the program.
CONTRACT = "contract.json"
#: Version of the contract's layout.
CONTRACT_VERSION = 1


class _InputOnly(nn.Module):
    """The served model called with the input tensor alone (the gate's active set fixed)."""

    def __init__(self, served: nn.Module) -> None:
        super().__init__()
        self.served = served

    def forward(self, x: Tensor) -> Tensor:
        return self.served(x)


#: How the program holds the graph (``"graph"`` in the contract).
BAKED, REBUILT = "supports baked in", "supports rebuilt per call"

#: Below this share of non-zeros a baked support is stored as an edge list, above it dense (the
#: measurements behind the value: benchmarks/README.md, "Serving").
EDGE_LIST_DENSITY = 0.02


class _BakedSupports(nn.Module):
    """The served model with its backbone's graph supports computed once and held as buffers.

    For a backbone with ``forward_with_supports`` (Graph WaveNet, DCRNN): the sub-graph's fixed
    supports (and Graph WaveNet's adaptive one, a function of frozen weights) are built eagerly
    and stored, so the program multiplies by constants instead of rebuilding the transition
    matrices from ``edge_index`` on every call. A support with fewer than
    :data:`EDGE_LIST_DENSITY` ``* K²`` non-zeros is stored as its non-zeros
    (:class:`~dynst_pyg.models.supports.EdgeListSupport`), a denser one dense.
    """

    def __init__(self, served: nn.Module) -> None:
        super().__init__()
        self.gate, self.backbone, self.lift = served.gate, served.backbone, served.lift
        self.register_buffer("keep", None if served.keep is None else served.keep.clone())
        bb, k = served.backbone, _backbone_nodes(served)
        with torch.no_grad():
            build = bb.supports if hasattr(bb, "supports") else bb.prepare_graph
            sup = build(served.edge_index, served.edge_weight, served.keep, num_nodes=k)
        self.forms = []
        for i, m in enumerate(sup):
            if support_density(m) >= EDGE_LIST_DENSITY:
                self.forms.append("dense")
                self.register_buffer(f"support_{i}", (m.to_dense() if m.layout != torch.strided else m).clone())
            else:
                self.forms.append("edges")
                e = EdgeListSupport.from_matrix(m)
                for part in ("row", "col", "value"):
                    self.register_buffer(f"support_{i}_{part}", getattr(e, part))
        self.num_nodes_kept = k

    def supports(self) -> list:
        out = []
        for i, form in enumerate(self.forms):
            if form == "dense":
                out.append(getattr(self, f"support_{i}"))
            else:
                out.append(EdgeListSupport(getattr(self, f"support_{i}_row"), getattr(self, f"support_{i}_col"),
                                           getattr(self, f"support_{i}_value"), self.num_nodes_kept))
        return out

    def forward(self, x: Tensor) -> Tensor:
        h = self.gate(x, node_index=self.keep)
        out = self.backbone.forward_with_supports(h, self.supports())
        if self.lift is not None:
            out = self.lift(out, self.keep)
        return out


def _backbone_nodes(served: nn.Module) -> int:
    """Number of sensors the served model's backbone runs on."""
    return served.backbone.num_nodes if served.keep is None else int(served.keep.numel())


def _programs(served: nn.Module):
    """Modules to try in turn: supports baked in where the backbone takes them, then the model as is."""
    if hasattr(served.backbone, "forward_with_supports"):
        yield BAKED, lambda: _BakedSupports(served).eval()
    yield REBUILT, lambda: _InputOnly(served).eval()


def export_served(served: nn.Module, example: Tensor, dynamic_batch: bool = True,
                  try_export: bool = True) -> tuple[object, str]:
    """``(program, kind)``: ``served`` exported with :func:`torch.export.export` (``kind="export"``,
    an :class:`~torch.export.ExportedProgram`) or, where that fails, traced to TorchScript
    (``kind="torchscript"``, a :class:`torch.jit.ScriptModule`).

    Args:
        served (nn.Module): A :class:`~dynst_pyg.models.ServedModel` in eval mode.
        example (Tensor): An input ``[B, T_in, K, F_in]`` (``B >= 2`` keeps the batch dynamic).
        dynamic_batch (bool, optional): Let the batch size vary (default: :obj:`True`).
        try_export (bool, optional): Try :func:`torch.export.export` first; :obj:`False` goes
            straight to TorchScript (default: :obj:`True`).
    """
    reasons = []
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=65536)}} if dynamic_batch else None
    for how, build in (_programs(served) if try_export else ()):
        try:
            module = build()
            with torch.no_grad():
                program = torch.export.export(module, (example,), dynamic_shapes=shapes)
            program.graph_constants = how  # type: ignore[attr-defined]
            return program, "export"
        except Exception as exc:  # noqa: BLE001 - any tracing failure falls back to the next way
            reasons.append(f"{how}: " + " ".join(str(exc).split())[:200])
    with torch.no_grad():
        scripted = torch.jit.trace(_InputOnly(served).eval(), (example,), check_trace=False)
    scripted.export_reason = "; ".join(reasons) or "torch.export not tried"  # type: ignore[attr-defined]
    scripted.graph_constants = REBUILT  # type: ignore[attr-defined]
    return scripted, "torchscript"


def _contract(fc: Forecaster, kind: str, program_file: str, reason: Optional[str], graph: str,
              aoti_program: Optional[str]) -> dict:
    run, splits = fc.run, fc.run.splits
    channels = [f"{name} (normalised)" for name in splits.dataset.feature_names]
    if splits.missing_indicator:
        channels += [f"{name} observed (1.0 reading, 0.0 filled)" for name in splits.dataset.feature_names]
    if splits.time_features:
        channels += ["time of day in [0, 1)", "day of week / 7 (Monday 0)"]
    return {
        "format_version": CONTRACT_VERSION, "run_id": run.run_id, "program": program_file, "kind": kind,
        "export_fallback_reason": reason, "graph": graph, "aoti_program": aoti_program, "backbone": run.spec.backbone, "target": fc.target,
        "input": "x [B, T_in, K, F_in]: the kept sensors' readings, missing ones carried forward from the last "
                 "reading (training mean before the first), normalised (x - mean) / std, then the channels below",
        "output": "[B, T_out, M, F_out] normalised; forecast = out * std + mean; M = output_sensor_ids",
        "kept_sensor_ids": fc.kept_ids, "output_sensor_ids": fc.output_ids,
        "scaler": {"mean": fc.scaler.mean.reshape(-1).tolist(), "std": fc.scaler.std.reshape(-1).tolist(),
                   "per_sensor": fc.scaler.per_node},
        "t_in": fc.t_in, "t_out": fc.t_out, "interval_minutes": fc.interval_minutes,
        "input_channels": channels, "target_features": list(splits.target_features),
        "null_value": fc.null_value,
    }


#: File name of the AOTInductor package (``export --aot``).
AOT_PROGRAM = "model.aoti.pt2"


def compile_aot(program: "torch.export.ExportedProgram", path: str | Path) -> Path:
    """Compiles an exported program ahead of time with AOTInductor into a package at ``path``.

    The package holds generated, compiled C++ for this machine's CPU architecture and is loaded
    with ``torch._inductor.aoti_load_package(path)`` (no compiler needed then); it takes the same
    input and returns the same output as ``program``. Compiling needs a C++ compiler and takes
    minutes on a small CPU.

    Args:
        program (ExportedProgram): A program from :func:`export_served` (``kind="export"``).
        path (str or Path): Where to write the package (``.pt2``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.pt2")
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=str(tmp))
        atomic_write(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_run(run_dir: str | Path, out_dir: str | Path, dynamic_batch: bool = True, aot: bool = False) -> dict:
    """Exports a run's served model (on CPU) to ``out_dir``: the program and ``contract.json``.

    Returns the contract. The run folder is checked as by :func:`~dynst_pyg.cli.load_run`.

    Args:
        run_dir (str or Path): A folder written by ``dynst-pyg prune``.
        out_dir (str or Path): Where to write ``model.pt2`` (or ``model.ts``) and ``contract.json``.
        dynamic_batch (bool, optional): Let the batch size vary (default: :obj:`True`).
        aot (bool, optional): Also compile the program with AOTInductor (:func:`compile_aot`) to
            ``model.aoti.pt2`` (``"aoti_program"`` in the contract); needs ``kind="export"``
            (default: :obj:`False`).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; expected a directory for the program and contract.json")
    fc = Forecaster.load(run_dir, device="cpu")
    x = fc.run.sub.test.batch(torch.arange(min(2, len(fc.run.sub.test))))[0].cpu()
    program, kind = export_served(fc.run.served, x, dynamic_batch)
    out_dir.mkdir(parents=True, exist_ok=True)
    reason = getattr(program, "export_reason", None)
    name = "model.pt2" if kind == "export" else "model.ts"
    tmp = out_dir / f".tmp.{name}"  # torch.export.save wants a name ending in .pt2
    if kind == "export":
        torch.export.save(program, str(tmp))
    else:
        torch.jit.save(program, str(tmp))
    data = tmp.read_bytes()
    tmp.unlink()
    atomic_write(out_dir / name, data)
    stale = out_dir / ("model.ts" if kind == "export" else "model.pt2")
    stale.unlink(missing_ok=True)
    aoti = None
    if aot:
        if kind != "export":
            raise ValueError(f"--aot needs a torch.export program, but torch.export failed ({reason})")
        aoti = compile_aot(program, out_dir / AOT_PROGRAM).name
    else:
        (out_dir / AOT_PROGRAM).unlink(missing_ok=True)  # never leave a package of an earlier export
    contract = _contract(fc, kind, name, reason, program.graph_constants, aoti)
    atomic_write(out_dir / CONTRACT, json.dumps(contract, indent=1) + "\n")
    return contract
