"""Benchmark of the INR engine: held-out accuracy of the designs, fit time, dense-map speed.

Sections (all by default, or a comma-separated subset with ``--sections``):

``accuracy``
    Real data: the 8 cell-type fractions at the 3,702 AHBA sites. One spatially blocked
    fold (20 mm blocks, 8 mm buffer, :func:`brainexpr.evaluation.protocols.spatial_block_folds`
    when available) is held out; the three INR designs (a CPU-sized configuration, the
    same for all) and the baselines (nearest sample, kNN k=10 inverse distance, kriging)
    are fitted on the rest and scored on the held-out sites (MSE, per-channel Pearson r).
``fit``
    Seconds per optimisation step of the paper-sized networks (12 x 512) on the 3,702
    sites x 8 channels, per design (full batch), and the fit time of the baselines. By
    default the time of one step is the difference of a 2-step and a 1-step fit, and 5,000
    steps are extrapolated from it; ``--fit-steps N`` times whole fits of N full-batch
    steps instead (``--fit-steps 5000``: the paper's training, measured, on a GPU).
    ``--fit-designs`` picks the designs (``factorized`` is ours, ``paper`` the paper's).
``precision``
    Dense prediction on the 2 mm brain mask (``--precision-voxels`` of its voxels, default
    all) by 12 x 512 networks fitted to the 8 cell types for ``--precision-steps``
    full-batch steps, in fp32, TF32 and bf16: the largest absolute difference from fp32
    (in the cell types' units and in SDs of the fp32 map) and the prediction time. On a
    GPU the model's own ``precision`` path is measured (its probe check switched off with
    a huge ``precision_tolerance``, so the raw error is seen); on the CPU, bf16 runs under
    ``torch.autocast("cpu")`` and TF32 (a GPU format) is not applicable.
``dense2``
    Dense prediction of 100 genes on the 2 mm MNI152 brain mask (228,364 voxels), paper-
    sized networks: ``factorized`` on every voxel; ``paper`` and ``per_gene`` on a
    sample of voxels, extrapolated (marked so); baselines on every voxel.
``dense1``
    100 genes on the 1 mm brain mask (1,827,243 voxels) streamed to disk as NIfTI by
    :func:`brainexpr.maps.write_maps` in a fresh process: wall time (prediction and
    writing) and peak resident memory of that process.

Usage::

    .venv/bin/python benchmarks/bench_inr.py [--sections accuracy,fit,dense2,dense1,precision]
        [--threads N] [--dense1-network paper|small] [--fit-steps N] [--fit-designs ...]
        [--precision-voxels N] [--precision-steps N] [--out results.json]

``benchmarks/gpu_check.sh`` runs the GPU sections on a CUDA machine.

Prints one Markdown table per section and, with ``--out``, writes all numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_GENES = 100
PAPER_NETWORK = dict(n_layers=12, hidden_features=512)
SMALL_NETWORK = dict(n_layers=4, hidden_features=128)
#: the CPU-sized configuration used for the held-out comparison (same for every design;
#: omega_0 is each design's default unless a row says otherwise)
ACCURACY_CONFIG = dict(n_layers=4, hidden_features=128, n_features=32, gene_hidden=32,
                       learning_rate=1e-3, max_steps=800, eval_every=25, patience=8,
                       validation_fraction=0.1, validation_block_mm=20.0, random_state=0)
#: (label, design, extra parameters) of the INR rows of the accuracy section
ACCURACY_ROWS = [
    ("INR factorized (omega_0 3, default)", "factorized", {}),
    ("INR factorized, omega_0 30", "factorized", {"omega_0": 30.0}),
    ("INR paper (omega_0 30, default)", "paper", {}),
    ("INR paper, omega_0 3", "paper", {"omega_0": 3.0}),
    ("INR per_gene (omega_0 30, default)", "per_gene", {}),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_celltypes():
    from brainexpr.workflows.models import load_training_data

    data = load_training_data("celltypes")
    return data.coords, data.values, data.tissue


def baselines() -> dict:
    """The baselines of the benchmark engineer, when their module exists."""
    try:
        from brainexpr.models.baselines import (KNNInterpolator, KrigingInterpolator,
                                                NearestSampleInterpolator)
    except ImportError:
        log("brainexpr.models.baselines not available: INR designs only")
        return {}
    return {"nearest": NearestSampleInterpolator, "knn": KNNInterpolator,
            "kriging": KrigingInterpolator}


def held_out_fold(coords):
    try:
        from brainexpr.evaluation.protocols import spatial_block_folds

        split = spatial_block_folds(coords, n_folds=5, block_size=20.0, buffer=8.0,
                                    random_state=0)[0]
        return split.train, split.test, "spatial_block_folds(5 folds, 20 mm, buffer 8 mm)[0]"
    except ImportError:
        from brainexpr.models.training import spatial_validation_split

        held = spatial_validation_split(coords, 0.2, 20.0, np.random.default_rng(0))
        return np.flatnonzero(~held), np.flatnonzero(held), "20 mm blocks, 20 % held out"


def score(prediction, truth) -> dict:
    truth = np.asarray(truth, dtype=float)
    mse = float(np.mean((prediction - truth) ** 2))
    r = [np.corrcoef(prediction[:, g], truth[:, g])[0, 1] for g in range(truth.shape[1])]
    # scaled MSE: 1 = predicting each channel's held-out mean
    scaled = float(np.mean(((prediction - truth) ** 2).mean(0) / truth.var(0)))
    return {"mse": mse, "mse_scaled": scaled, "mean_r": float(np.mean(r)),
            "min_r": float(np.min(r))}


def section_accuracy(results: dict) -> None:
    from brainexpr.models.inr import INRRegressor

    coords, values, tissue = load_celltypes()
    train, test, protocol = held_out_fold(coords)
    log(f"accuracy: {len(train)} training sites, {len(test)} held-out sites ({protocol})")
    rows = []
    for label, design, extra in ACCURACY_ROWS:
        started = time.perf_counter()
        model = INRRegressor(design, **dict(ACCURACY_CONFIG, **extra))
        model.fit(coords[train], values.iloc[train], tissue[train])
        seconds = time.perf_counter() - started
        prediction = model.predict(coords[test], tissue[test])
        rows.append({"model": label, "fit_s": seconds, "steps": model.best_step_[0],
                     **score(prediction, values.iloc[test])})
        log(f"  {rows[-1]}")
    for name, cls in baselines().items():
        started = time.perf_counter()
        model = cls().fit(coords[train], values.iloc[train], tissue[train])
        seconds = time.perf_counter() - started
        prediction = model.predict(coords[test], tissue[test])
        rows.append({"model": name, "fit_s": seconds, "steps": None,
                     **score(prediction, values.iloc[test])})
        log(f"  {rows[-1]}")
    results["accuracy"] = {"protocol": protocol, "n_train": int(len(train)),
                           "n_test": int(len(test)), "config": ACCURACY_CONFIG, "rows": rows}


def _fitted(design, n_genes, network, coords, steps=1, **extra):
    """A model of the given size (weights after ``steps`` steps: cost does not depend on them)."""
    from brainexpr.models.inr import INRRegressor

    rng = np.random.default_rng(0)
    values = pd.DataFrame(rng.normal(size=(len(coords), n_genes)),
                          columns=[f"G{i:03d}" for i in range(n_genes)])
    model = INRRegressor(design, max_steps=steps, validation_fraction=0, random_state=0,
                         **network, **extra)
    return model.fit(coords, values, gene_axis=np.linspace(0, 1, n_genes))


def _timed_fit(design, steps, coords, values, tissue) -> float:
    """Seconds of one full-batch fit of ``steps`` steps of a 12 x 512 network."""
    from brainexpr.models.inr import INRRegressor

    started = time.perf_counter()
    INRRegressor(design, max_steps=steps, validation_fraction=0, random_state=0,
                 batch_size=len(coords), **PAPER_NETWORK).fit(coords, values, tissue)
    return time.perf_counter() - started


def section_fit(results: dict, fit_steps: int = 0,
                designs=("factorized", "paper", "per_gene")) -> None:
    coords, values, tissue = load_celltypes()
    rows = []
    for design in designs:
        if fit_steps > 2:
            _timed_fit(design, 1, coords, values, tissue)  # warm-up (CUDA context, kernels)
            seconds = _timed_fit(design, fit_steps, coords, values, tissue)
            rows.append({"model": f"INR {design} 12x512", "s_per_step": seconds / fit_steps,
                         "steps": fit_steps, "fit_s": seconds, "extrapolated": False})
        else:
            # the difference of a 2-step and a 1-step fit removes set-up costs
            per_step = (_timed_fit(design, 2, coords, values, tissue)
                        - _timed_fit(design, 1, coords, values, tissue))
            rows.append({"model": f"INR {design} 12x512", "s_per_step": per_step,
                         "steps": 5000, "fit_s": per_step * 5000, "extrapolated": True})
        log(f"  {rows[-1]}")
    for name, cls in baselines().items():
        started = time.perf_counter()
        cls().fit(coords, values, tissue)
        rows.append({"model": name, "fit_s": time.perf_counter() - started})
        log(f"  {rows[-1]}")
    results["fit"] = {"data": "3702 sites x 8 cell types, full batch", "rows": rows}


def section_dense2(results: dict) -> None:
    from brainexpr.maps import predict_dense, voxel_grid

    coords, _, _ = load_celltypes()
    started = time.perf_counter()
    grid = voxel_grid("brain", 2)
    grid_s = time.perf_counter() - started
    rows = []
    rng = np.random.default_rng(1)
    for design in ("factorized", "paper", "per_gene"):
        # per_gene: 100 networks of 12 x 512 (and their Adam states) would need ~5 GB to
        # build; its cost is linear in the genes, so 10 genes are timed and scaled by 10
        n_genes = 10 if design == "per_gene" else N_GENES
        model = _fitted(design, n_genes, PAPER_NETWORK, coords)
        if design == "factorized":
            started = time.perf_counter()
            mean, _ = predict_dense(model, grid)
            seconds = time.perf_counter() - started
            assert mean.shape == (N_GENES, grid.n_voxels) and np.isfinite(mean).all()
            rows.append({"model": f"INR {design} 12x512", "voxels": grid.n_voxels,
                         "seconds": seconds, "extrapolated": False})
        else:
            sample = rng.choice(grid.n_voxels, 500, replace=False)
            points = model.scale_points(grid.coords[sample], grid.tissue[sample])
            started = time.perf_counter()
            model.predict_points(points)
            seconds = ((time.perf_counter() - started) * grid.n_voxels / len(sample)
                       * N_GENES / n_genes)
            rows.append({"model": f"INR {design} 12x512", "voxels": len(sample),
                         "genes_timed": n_genes, "seconds": seconds, "extrapolated": True})
        log(f"  {rows[-1]}")
    values = pd.DataFrame(rng.normal(size=(len(coords), N_GENES)))
    for name, cls in baselines().items():
        model = cls().fit(coords, values)
        started = time.perf_counter()
        out = model.predict(grid.coords, grid.tissue)
        seconds = time.perf_counter() - started
        assert out.shape == (grid.n_voxels, N_GENES)
        rows.append({"model": name, "voxels": grid.n_voxels, "seconds": seconds,
                     "extrapolated": False})
        log(f"  {rows[-1]}")
    results["dense2"] = {"genes": N_GENES, "voxels": grid.n_voxels, "grid_build_s": grid_s,
                         "rows": rows}


def _precision_run(model, precision: str, device: str, points: np.ndarray, tissue: np.ndarray):
    """(prediction, seconds) in one precision, or None where it does not apply (TF32 on CPU)."""
    import contextlib

    import torch

    context = contextlib.nullcontext()
    if device == "cuda":
        model.precision, model.precision_tolerance = precision, 1e9  # no fall-back to fp32
    elif precision == "bf16":
        context = torch.autocast("cpu", dtype=torch.bfloat16)
    elif precision == "tf32":
        return None
    with context:
        model.predict(points[:64], tissue[:64])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        prediction = np.asarray(model.predict(points, tissue), dtype=np.float64)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    model.precision = "fp32"
    return prediction, seconds


def section_precision(results: dict, n_voxels: int | None = None, steps: int = 100,
                      designs=("factorized", "paper")) -> None:
    from brainexpr.maps import voxel_grid
    from brainexpr.models.inr import INRRegressor

    coords, values, tissue = load_celltypes()
    grid = voxel_grid("brain", 2)
    take = np.arange(grid.n_voxels)
    if n_voxels is not None and n_voxels < grid.n_voxels:
        take = np.sort(np.random.default_rng(2).choice(grid.n_voxels, n_voxels, replace=False))
    points, classes = grid.coords[take], grid.tissue[take]
    rows = []
    for design in designs:
        model = INRRegressor(design, max_steps=steps, validation_fraction=0, random_state=0,
                             batch_size=len(coords), **PAPER_NETWORK).fit(coords, values, tissue)
        device = "cuda" if model.device_.startswith("cuda") else "cpu"
        reference, reference_s = _precision_run(model, "fp32", device, points, classes)
        spread = float(reference.std())
        for precision in ("fp32", "tf32", "bf16"):
            run = ((reference, reference_s) if precision == "fp32"
                   else _precision_run(model, precision, device, points, classes))
            row = {"model": f"INR {design} 12x512", "device": device, "precision": precision,
                   "voxels": len(take), "channels": reference.shape[1], "steps": steps}
            if run is None:
                row.update({"max_abs_error": None, "max_error_sd": None, "seconds": None})
            else:
                error = float(np.abs(run[0] - reference).max())
                row.update({"max_abs_error": error, "max_error_sd": error / spread,
                            "seconds": run[1]})
            rows.append(row)
            log(f"  {row}")
    results["precision"] = {"voxels": len(take), "rows": rows}


DENSE1_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, pandas as pd, torch
    sys.path.insert(0, {bench_dir!r})
    from bench_inr import _fitted, load_celltypes
    from brainexpr.maps import voxel_grid, write_maps
    torch.set_num_threads({threads})
    coords, _, _ = load_celltypes()
    model = _fitted("factorized", {n_genes}, {network!r}, coords)
    t0 = time.perf_counter()
    grid = voxel_grid("brain", 1)
    t1 = time.perf_counter()
    import brainexpr.maps.dense as dense
    original = dense.predict_dense
    marks = {{}}
    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        marks["predict_s"] = time.perf_counter() - start
        return out
    dense.predict_dense = timed
    files = write_maps(model, out_dir={out_dir!r}, grid=grid, compress={compress})
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print("RESULT " + json.dumps({{"voxels": grid.n_voxels, "grid_s": t1 - t0,
                                  "predict_s": marks["predict_s"],
                                  "write_s": t2 - t1 - marks["predict_s"], "total_s": t2 - t0,
                                  "files": len(files), "peak_gib": peak}}))
""")


def section_dense1(results: dict, threads: int, network_name: str) -> None:
    network = PAPER_NETWORK if network_name == "paper" else SMALL_NETWORK
    rows = []
    for compress in (True,):
        with tempfile.TemporaryDirectory(prefix="bench-inr-") as tmp:
            code = DENSE1_CHILD.format(bench_dir=str(Path(__file__).parent), threads=threads,
                                       n_genes=N_GENES, network=network,
                                       out_dir=str(Path(tmp) / "maps"), compress=compress)
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
            row = json.loads(line[len("RESULT "):])
            row.update({"network": f"{network['n_layers']}x{network['hidden_features']}",
                        "compress": compress, "process_wall_s": wall})
            rows.append(row)
            log(f"  {row}")
    results["dense1"] = {"genes": N_GENES, "rows": rows}


def markdown(results: dict) -> str:
    lines = []
    if "accuracy" in results:
        acc = results["accuracy"]
        lines += [f"### Held-out accuracy, 8 cell types at AHBA sites ({acc['n_train']} train / "
                  f"{acc['n_test']} held-out sites; {acc['protocol']})", "",
                  "| model | fit (s) | kept step | MSE | MSE / variance | mean r | min r |",
                  "|---|---|---|---|---|---|---|"]
        for row in acc["rows"]:
            lines.append(f"| {row['model']} | {row['fit_s']:.1f} | {row['steps'] or '-'} | "
                         f"{row['mse']:.5f} | {row['mse_scaled']:.3f} | {row['mean_r']:.3f} | "
                         f"{row['min_r']:.3f} |")
        lines.append("")
    if "fit" in results:
        lines += ["### Fit time, 3,702 sites x 8 channels", "", "| model | time |", "|---|---|"]
        for row in results["fit"]["rows"]:
            if "s_per_step" in row:
                how = "extrapolated" if row["extrapolated"] else "measured"
                lines.append(f"| {row['model']} | {row['s_per_step']:.4f} s/step "
                             f"({row['steps']} steps: {row['fit_s']:.1f} s, {how}) |")
            else:
                lines.append(f"| {row['model']} | {row['fit_s']:.2f} s |")
        lines.append("")
    if "dense2" in results:
        d2 = results["dense2"]
        lines += [f"### Dense prediction, {d2['genes']} genes, 2 mm brain mask "
                  f"({d2['voxels']:,} voxels)", "", "| model | seconds | measured on |",
                  "|---|---|---|"]
        for row in d2["rows"]:
            how = (f"{row['voxels']:,} voxels x {row.get('genes_timed', d2['genes'])} genes, "
                   "extrapolated" if row["extrapolated"] else "every voxel")
            lines.append(f"| {row['model']} | {row['seconds']:.1f} | {how} |")
        lines.append("")
    if "dense1" in results:
        lines += ["### 1 mm brain mask, 100 genes streamed to NIfTI (fresh process)", "",
                  "| network | voxels | predict (s) | write (s) | total (s) | peak RSS (GiB) |",
                  "|---|---|---|---|---|---|"]
        for row in results["dense1"]["rows"]:
            lines.append(f"| factorized {row['network']} | {row['voxels']:,} | "
                         f"{row['predict_s']:.1f} | {row['write_s']:.1f} | {row['total_s']:.1f} | "
                         f"{row['peak_gib']:.2f} |")
        lines.append("")
    if "precision" in results:
        lines += [f"### Dense prediction against fp32 ({results['precision']['voxels']:,} voxels "
                  "of the 2 mm brain mask, 8 cell types)", "",
                  "| model | device | precision | max abs error | max error / SD | seconds |",
                  "|---|---|---|---|---|---|"]
        for row in results["precision"]["rows"]:
            if row["seconds"] is None:
                lines.append(f"| {row['model']} | {row['device']} | {row['precision']} | "
                             "n/a | n/a | n/a |")
            else:
                lines.append(f"| {row['model']} | {row['device']} | {row['precision']} | "
                             f"{row['max_abs_error']:.3g} | {row['max_error_sd']:.3g} | "
                             f"{row['seconds']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="accuracy,fit,dense2,dense1")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dense1-network", choices=["paper", "small"], default="paper",
                        help="network size of the 1 mm run (paper: 12x512, small: 4x128)")
    parser.add_argument("--fit-steps", type=int, default=0,
                        help="fit section: time whole fits of this many steps (default: "
                             "extrapolate 5000 steps from 1 and 2)")
    parser.add_argument("--fit-designs", default="factorized,paper,per_gene",
                        help="fit section: comma-separated designs")
    parser.add_argument("--precision-voxels", type=int, default=None,
                        help="precision section: voxels of the 2 mm mask (default all)")
    parser.add_argument("--precision-steps", type=int, default=100,
                        help="precision section: full-batch fit steps (default 100)")
    parser.add_argument("--out", default=None, help="write all numbers to this JSON file")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(),
                           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available()
                           else None,
                           "load_average_start": os.getloadavg()},
               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for section in sections:
        log(f"== {section}")
        started = time.perf_counter()
        if section == "accuracy":
            section_accuracy(results)
        elif section == "fit":
            section_fit(results, args.fit_steps, [d.strip() for d in args.fit_designs.split(",")])
        elif section == "dense2":
            section_dense2(results)
        elif section == "precision":
            section_precision(results, args.precision_voxels, args.precision_steps)
        elif section == "dense1":
            section_dense1(results, torch.get_num_threads(), args.dense1_network)
        else:
            parser.error(f"unknown section {section!r}")
        results.setdefault("section_seconds", {})[section] = time.perf_counter() - started
    results["machine"]["load_average_end"] = os.getloadavg()
    print(markdown(results))
    print(f"machine: {results['machine']}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
