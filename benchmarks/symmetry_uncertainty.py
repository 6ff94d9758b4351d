"""Learned left-right symmetry and calibrated uncertainty: held-out accuracy and coverage.

Runs :func:`brainexpr.evaluation.benchmark.run_benchmark` (the same folds as ``brainexpr
benchmark``: spatially blocked 5-fold with 20 mm blocks and an 8 mm buffer, and
leave-one-donor-out) on three datasets:

``celltypes``
    The 8 real cell-type fractions at the 3,702 AHBA sites (scored against the held-out
    observations).
``phantom``
    The default phantom (seed 0, ``--n-genes`` genes; scored against the truth).
``phantom-symmetric``
    The same generator with ``symmetry`` (default 0.9): every component of each truth
    pulled towards its left-right mirror image (donor deviations and noise stay
    asymmetric).

Methods: kNN without mirroring, abagen's interpolation (bidirectional mirroring, k = 10,
1/distance), kriging, mirrored kriging, donor kriging without the symmetry term (the
previous default) and donor kriging (the default, symmetry learned per gene). Writes the
per-gene metric and calibration tables (CSV) and a Markdown summary: mean and median
per-gene r per protocol, and, for the methods with a standard deviation, the coverage of
nominal 50 / 90 / 95 % Gaussian intervals, SD / RMSE, the rank correlation of SD with
the absolute error, CRPS and Gaussian NLL (the ``sample`` SD against held-out
observations; the ``population`` SD against the phantom truth). It also fits the default
model on all sites of each dataset and compares its per-gene trust score with the
per-gene blocked-CV r.

Usage (one thread; about 11 min for the cell types and 20-30 min per phantom on the loaded
2-core dev machine; datasets can run as separate processes and be merged)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/symmetry_uncertainty.py --datasets celltypes --out-dir /tmp/su/celltypes
    ... --datasets phantom phantom-symmetric --out-dir /tmp/su/phantoms
    ... --datasets --inr-folds 1 --out-dir /tmp/su/inr     # INR ensemble SD: raw vs recalibrated
    .venv/bin/python benchmarks/symmetry_uncertainty.py --report /tmp/su/celltypes /tmp/su/phantoms \\
        --out-dir benchmarks/results/symmetry_uncertainty
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

METHODS = ("knn", "abagen", "kriging", "kriging-mirrored", "donor-kriging-asymmetric", "donor-kriging")


def datasets(names, n_genes: int, symmetry: float, seed: int):
    """BenchmarkData objects by name (see the module docstring)."""
    from brainexpr.evaluation.benchmark import celltype_data, phantom_data
    from brainexpr.evaluation.phantom import make_phantom

    out = []
    for name in names:
        if name == "celltypes":
            out.append(celltype_data())
        else:
            level = symmetry if name == "phantom-symmetric" else 0.0
            data = phantom_data(make_phantom(n_genes, symmetry=level, random_state=seed))
            data.name = name
            out.append(data)
    return out


def blocked_r(metrics: pd.DataFrame, dataset: str) -> dict:
    """Per-gene blocked-CV r of the default model, against the observations and the truth."""
    rows = metrics[(metrics["dataset"] == dataset) & (metrics["method"] == "donor-kriging")
                   & (metrics["protocol"] == "blocked")]
    return {target: part.set_index("gene")["pearson"] for target, part in rows.groupby("target")}


def trust_check(data, seed: int, blocked: dict) -> dict:
    """Fit the default model on all sites; compare its trust score with blocked-CV r."""
    from brainexpr.models.base import fit_samples
    from brainexpr.models.kriging import DonorKrigingRegressor

    start = time.perf_counter()
    model = fit_samples(DonorKrigingRegressor(random_state=seed), data.coords, data.values,
                        tissue=data.tissue, donors=data.donors)
    trust = pd.Series(model.trust_, index=data.genes)
    out = {"dataset": data.name, "fit_s": round(time.perf_counter() - start, 1), "trust_mean": float(trust.mean())}
    for target, r in blocked.items():  # observed (held-out samples) and, on phantoms, truth
        r = r.reindex(data.genes)
        out.update({f"blocked_r_{target}_mean": float(r.mean()),
                    f"spearman_{target}": float(stats.spearmanr(trust, r).statistic),
                    f"mean_abs_difference_{target}": float((trust - r).abs().mean())})
    out["symmetry_weights"] = {f"{w:g}": int(c) for w, c in zip(*np.unique(model.symmetry_, return_counts=True))}
    return out


def inr_calibration(seed: int, n_folds: int) -> pd.DataFrame:
    """Raw and recalibrated SD of the benchmark's 3-member factorized INR ensemble.

    Real cell types, the first ``n_folds`` blocked folds of ``brainexpr benchmark``; the
    ensemble's SD is rescaled per gene on each member's own held-out validation blocks
    (``validation_fraction=0.1``, 20 mm blocks) inside the training sites.
    """
    from brainexpr.evaluation.benchmark import METHODS, celltype_data
    from brainexpr.evaluation.metrics import CALIBRATION_METRICS, calibration_metrics
    from brainexpr.evaluation.protocols import spatial_block_folds

    data = celltype_data()
    values = data.values.to_numpy(float)
    rows = []
    for split in spatial_block_folds(data.coords, 5, 20.0, 8.0, seed)[:n_folds]:
        start = time.perf_counter()
        model = METHODS["inr-ensemble"].factory(False, seed).fit(
            data.coords[split.train], values[split.train], tissue=data.tissue[split.train])
        mean, std = model.predict(data.coords[split.test], tissue=data.tissue[split.test], return_std=True)
        scale, floor = model.std_scale_, model.std_floor_
        model.std_scale_ = model.std_floor_ = None  # the raw spread over members
        raw = model.predict(data.coords[split.test], tissue=data.tissue[split.test], return_std=True)[1]
        for label, sd in (("raw ensemble SD", raw), ("recalibrated SD", std)):
            table = calibration_metrics(mean, sd, values[split.test], data.genes)
            rows.append({"fold": split.name, "sd": label, "fit_s": round(time.perf_counter() - start, 1),
                         "median_factor": float(np.nanmedian(scale)), "median_floor": float(np.nanmedian(floor)),
                         **table[list(CALIBRATION_METRICS)].mean().to_dict()})
    return pd.DataFrame(rows)


def markdown(metrics: pd.DataFrame, calibration: pd.DataFrame, trust: list, timings: pd.DataFrame) -> str:
    from brainexpr.reporting.benchmark import _markdown_table as markdown_table

    lines = []
    target_of = lambda d: "observed" if d == "celltypes" else "truth"  # noqa: E731
    for dataset in pd.unique(metrics["dataset"]):
        table = metrics[(metrics["dataset"] == dataset) & (metrics["target"] == target_of(dataset))
                        & metrics["protocol"].isin(["blocked", "donor"])]
        summary = table.groupby(["method", "protocol"], sort=False)["pearson"].agg(["mean", "median"])
        wide = summary.unstack("protocol")
        wide.columns = [f"{p} {s}" for s, p in wide.columns]
        wide = wide[[c for c in ("blocked mean", "blocked median", "donor mean", "donor median") if c in wide]]
        lines += [f"### {dataset}: per-gene Pearson r against the {target_of(dataset)} (mean / median over genes)",
                  "", markdown_table(wide.reset_index()), ""]
    if len(calibration):
        columns = ["coverage50", "coverage90", "coverage95", "sd_rmse", "sd_error_spearman", "crps", "nll"]
        summary = (calibration.groupby(["dataset", "method", "protocol", "target", "kind"], sort=False)[columns]
                   .mean().reset_index())
        lines += ["### Calibration (mean over genes; intervals pooled over the held-out sites of all folds)",
                  "", markdown_table(summary), ""]
    if trust:
        lines += ["### Trust score (default model fitted on all sites) against per-gene blocked-CV r", "",
                  markdown_table(pd.DataFrame(trust)), ""]
    times = timings.groupby(["dataset", "method"], sort=False)[["n_fits", "fit_s", "predict_s"]].sum()
    lines += ["### Time (all folds; predict includes the standard deviations)", "",
              markdown_table(times.reset_index()), ""]
    return "\n".join(lines)


def merge(run_dirs, out_dir: Path) -> int:
    """Concatenate the tables of several runs (e.g. one per dataset) and write one summary."""
    tables = {name: pd.concat([pd.read_csv(Path(d) / f"{name}.csv") for d in run_dirs], ignore_index=True)
              for name in ("metrics", "calibration", "timings")}
    trust = [row for d in run_dirs for row in json.loads((Path(d) / "trust.json").read_text())]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
    (out_dir / "trust.json").write_text(json.dumps(trust, indent=1))
    (out_dir / "summary.md").write_text(markdown(tables["metrics"], tables["calibration"], trust,
                                                 tables["timings"]))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["celltypes", "phantom", "phantom-symmetric"],
                        choices=["celltypes", "phantom", "phantom-symmetric"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--n-genes", type=int, default=24, help="phantom genes (default: 24)")
    parser.add_argument("--symmetry", type=float, default=0.9, help="symmetry of phantom-symmetric")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--inr-folds", type=int, default=0,
                        help="also measure the INR ensemble's raw and recalibrated SD on this many "
                             "blocked folds of the cell types (default: 0)")
    parser.add_argument("--trust-only", action="store_true",
                        help="recompute trust.json from the metrics.csv already in --out-dir")
    parser.add_argument("--report", nargs="+", metavar="RUN_DIR",
                        help="only merge the tables of earlier runs into --out-dir/summary.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.report:
        return merge(args.report, Path(args.out_dir))
    from brainexpr.evaluation.benchmark import run_benchmark

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.inr_folds:
        table = inr_calibration(args.seed, args.inr_folds)
        table.to_csv(out_dir / "inr_calibration.csv", index=False)
        from brainexpr.reporting.benchmark import _markdown_table

        (out_dir / "inr_calibration.md").write_text(_markdown_table(table) + "\n")
        if not args.datasets:
            return 0
    if args.trust_only:
        metrics = pd.read_csv(out_dir / "metrics.csv")
        trust = []
        for data in datasets(args.datasets, args.n_genes, args.symmetry, args.seed):
            trust.append(trust_check(data, args.seed, blocked_r(metrics, data.name)))
        (out_dir / "trust.json").write_text(json.dumps(trust, indent=1))
        return 0
    metrics, calibration, timings, trust = [], [], [], []
    for data in datasets(args.datasets, args.n_genes, args.symmetry, args.seed):
        result = run_benchmark([data], methods=args.methods, protocols=("blocked", "donor"),
                               random_state=args.seed)
        metrics.append(result.metrics)
        calibration.append(result.calibration)
        timings.append(result.timings)
        if "donor-kriging" in args.methods:
            trust.append(trust_check(data, args.seed, blocked_r(result.metrics, data.name)))
        # write after every dataset, so a long run leaves its finished parts
        pd.concat(metrics).to_csv(out_dir / "metrics.csv", index=False)
        pd.concat(calibration).to_csv(out_dir / "calibration.csv", index=False)
        pd.concat(timings).to_csv(out_dir / "timings.csv", index=False)
        (out_dir / "trust.json").write_text(json.dumps(trust, indent=1))
        (out_dir / "summary.md").write_text(markdown(pd.concat(metrics), pd.concat(calibration), trust,
                                                     pd.concat(timings)))
    logging.info("done in %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
