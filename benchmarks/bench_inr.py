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
    sites x 8 channels, per design (full batch), and the fit time of the baselines.
``dense2``
    Dense prediction of 100 genes on the 2 mm MNI152 brain mask (228,364 voxels), paper-
    sized networks: ``factorized`` on every voxel; ``paper`` and ``per_gene`` on a
    sample of voxels, extrapolated (marked so); baselines on every voxel.
``dense1``
    100 genes on the 1 mm brain mask (1,827,243 voxels) streamed to disk as NIfTI by
    :func:`brainexpr.maps.write_maps` in a fresh process: wall time (prediction and
    writing) and peak resident memory of that process.

Usage::

    .venv/bin/python benchmarks/bench_inr.py [--sections accuracy,fit,dense2,dense1]
        [--threads N] [--dense1-network paper|small] [--out results.json]

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


def section_fit(results: dict) -> None:
    from brainexpr.models.inr import INRRegressor

    coords, values, tissue = load_celltypes()
    rows = []
    for design in ("factorized", "paper", "per_gene"):
        timings = []
        for steps in (1, 2):  # the difference removes set-up costs
            started = time.perf_counter()
            INRRegressor(design, max_steps=steps, validation_fraction=0, random_state=0,
                         batch_size=len(coords), **PAPER_NETWORK).fit(coords, values, tissue)
            timings.append(time.perf_counter() - started)
        per_step = timings[1] - timings[0]
        rows.append({"model": f"INR {design} 12x512", "s_per_step": per_step,
                     "fit_5000_steps_s": per_step * 5000, "extrapolated": True})
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
                lines.append(f"| {row['model']} | {row['s_per_step']:.2f} s/step "
                             f"(5000 steps: {row['fit_5000_steps_s'] / 60:.0f} min, extrapolated) |")
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
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="accuracy,fit,dense2,dense1")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dense1-network", choices=["paper", "small"], default="paper",
                        help="network size of the 1 mm run (paper: 12x512, small: 4x128)")
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
            section_fit(results)
        elif section == "dense2":
            section_dense2(results)
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
