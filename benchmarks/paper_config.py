"""The seed paper's INR configuration trained for its 5,000 steps, scored on held-out sites.

Issue 17, item 1. The paper (Yu et al.) trains a 12 x 512 SIREN (omega_0 = 30) on
``(x, y, z, c, gamma(e_g))`` with a positional encoding of N = 10 frequencies, Adam at
1e-4 for 5,000 steps, after an 18:1:1 random split of its data, and keeps the state of
lowest training loss. Two model selections are compared on the same folds:

``paper``
    10 % of the training sites left out at random (the paper's 1 + 1 parts of 20) and the
    state of lowest loss on the training sites kept (evaluated every ``--eval-every``
    steps; ``selection="training_loss"``), no early stopping.
``ours``
    10 % of the training sites left out in 20 mm blocks, the state of lowest loss on
    those spatially held-out sites kept, early stopping after ``--patience`` evaluations
    without improvement (``selection="validation"``).

Both are scored by the benchmark's protocols (``--protocols``, the splits of
:mod:`brainexpr.evaluation.protocols`):

``blocked``
    spatially blocked folds (20 mm blocks, 8 mm buffer; the held-out fold is never seen),
    scored at the held-out sites against their values and, on the phantom, the truth;
``donor``
    leave one donor out: trained on five donors, scored at the sixth donor's sites (per
    donor, then averaged over the donors run);
``map``
    map vs truth (phantom only): trained on all sites, the dense map scored against the
    truth at uniformly drawn 2 mm brain voxels (``truth``) and by its DK-83 parcel means
    against the true ones (``regional_truth``), on the voxels of
    :func:`~brainexpr.evaluation.protocols.map_voxels_for_scoring`.

kNN (k = 10, 1/distance) and kriging are fitted on the same folds as the baselines of the
same run. ``--first-fold`` and ``--max-folds`` pick the blocked folds and held-out donors
run. The paper sums its loss over all training data at every step; on a CPU each step sees
``--pairs-per-step`` (site, gene) pairs instead (a mini-batch of ``pairs // n_genes``
sites). The scale (genes, folds, pairs per step) is printed and must be stated with the
numbers.

Usage (one thread; 9-71 min per paper-selection fit on the shared 2-core machine, load 10-20)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup .venv/bin/python \\
        benchmarks/paper_config.py --protocols blocked,donor,map --out-dir /tmp/paper_config \\
        > /tmp/paper_config.log 2>&1 &

On a GPU, the full run (all five blocked folds, all six donors, map vs truth, 24 phantom
genes; 100,000 pairs per step hold every training site of 24 genes, i.e. full-batch steps
as in the paper)::

    .venv/bin/python benchmarks/paper_config.py --protocols blocked,donor,map --n-genes 24 \\
        --max-folds 6 --pairs-per-step 100000 --out-dir /tmp/paper_config_gpu
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brainexpr.datasets.validate import check_choices
from brainexpr.errors import InputError
from brainexpr.evaluation import metrics as M
from brainexpr.evaluation.ablation import PAPER_INR, history_frame, score_split
from brainexpr.evaluation.benchmark import celltype_data, phantom_data
from brainexpr.evaluation.phantom import make_phantom
from brainexpr.evaluation.protocols import leave_one_donor_out, map_voxels_for_scoring, spatial_block_folds
from brainexpr.models.base import fit_samples
from brainexpr.models.baselines import KNNInterpolator, KrigingInterpolator
from brainexpr.models.inr import INRRegressor

#: The paper's selection: a random 10 % (1 mm "blocks" hold one site each) and training loss.
PAPER_SELECTION = dict(selection="training_loss", validation_fraction=0.1, validation_block_mm=1e-3)
#: Ours: 10 % of the sites in 20 mm blocks, early stopping on their loss.
OUR_SELECTION = dict(selection="validation", validation_fraction=0.1, validation_block_mm=20.0)
#: The benchmark's protocols this script runs (``map`` only where the truth is known).
PROTOCOLS = ("blocked", "donor", "map")


def machine_line(start: float) -> str:
    """Machine, threads, load and wall time since ``start`` (``time.perf_counter()``)."""
    return (f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
            f"1 thread, CUDA: {torch.cuda.is_available()}, load average at the end "
            f"{os.getloadavg()[0]:.1f}; wall {time.perf_counter() - start:.0f} s")


def models(args, n_genes: int) -> dict:
    """name -> unfitted estimator, for one fold."""
    batch = max(args.pairs_per_step // n_genes, 1)
    common = dict(PAPER_INR, max_steps=args.max_steps, batch_size=batch, eval_every=args.eval_every,
                  patience=args.patience, device=args.device, random_state=args.random_state)
    return {"knn": KNNInterpolator(n_neighbors=10),
            "kriging": KrigingInterpolator(random_state=args.random_state),
            "inr-paper, paper selection": INRRegressor(**common, **PAPER_SELECTION),
            "inr-paper, our selection": INRRegressor(**common, **OUR_SELECTION)}


def site_splits(data, protocol: str, args) -> list:
    """The blocked folds or held-out donors of ``protocol`` that this run scores."""
    splits = (spatial_block_folds(data.coords, args.n_folds, 20.0, 8.0, args.random_state)
              if protocol == "blocked" else leave_one_donor_out(data.donors))
    return splits[args.first_fold:args.first_fold + args.max_folds]


def score_map(estimator, data, points) -> tuple[pd.DataFrame, float]:
    """Fit ``estimator`` on all sites of a phantom; score its dense map against the truth.

    Parameters
    ----------
    estimator : SampleInterpolator
        Unfitted.
    data : BenchmarkData
        A phantom (``data.phantom`` set).
    points : tuple
        The output of :func:`~brainexpr.evaluation.protocols.map_voxels_for_scoring`.

    Returns
    -------
    metrics : pandas.DataFrame
        One row per (target, gene): ``truth`` (Pearson r and the other
        :func:`~brainexpr.evaluation.metrics.gene_metrics` at the uniform brain voxels) and
        ``regional_truth`` (Pearson r across DK-83 parcels of the map's parcel means).
    fit_s : float
        Fitting time (s).
    """
    coords, tissue, regions, n_uniform = points[:4]
    start = time.perf_counter()
    fit_samples(estimator, data.coords, data.values.to_numpy(float), tissue=data.tissue,
                gene_axis=data.gene_axis, donors=data.donors)
    fit_s = time.perf_counter() - start
    predicted = np.asarray(estimator.predict(coords, tissue=tissue), dtype=float)
    truth = data.phantom.truth(coords[:n_uniform])
    voxels = M.gene_metrics(predicted[:n_uniform], truth, data.genes).reset_index()
    voxels = voxels.rename(columns={"index": "gene"})
    voxels.insert(0, "target", "truth")
    regional = M.regional_means(predicted, regions)
    regional.columns = data.genes
    per_gene, _ = M.regional_agreement(regional, data.phantom.regional_truth())
    parcels = pd.DataFrame({"target": "regional_truth", "gene": per_gene.index,
                            "pearson": per_gene.to_numpy()})
    return pd.concat([voxels, parcels], ignore_index=True), fit_s


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (``--protocols`` checked against :data:`PROTOCOLS`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["phantom", "celltypes"],
                        choices=["phantom", "celltypes"])
    parser.add_argument("--protocols", default="blocked",
                        help=f"comma-separated, among {', '.join(PROTOCOLS)} (default blocked)")
    parser.add_argument("--n-genes", type=int, default=4, help="phantom genes (default 4)")
    parser.add_argument("--n-folds", type=int, default=5, help="blocked folds of the split (default 5)")
    parser.add_argument("--max-folds", type=int, default=1,
                        help="blocked folds and held-out donors run, each (default 1)")
    parser.add_argument("--first-fold", type=int, default=0,
                        help="index of the first blocked fold and held-out donor run (default 0)")
    parser.add_argument("--max-steps", type=int, default=5000, help="steps (default: the paper's 5000)")
    parser.add_argument("--pairs-per-step", type=int, default=128,
                        help="(site, gene) pairs per step (default 128)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10,
                        help="evaluations without improvement before ours stops (default 10)")
    parser.add_argument("--map-voxels", type=int, default=20_000,
                        help="uniform 2 mm brain voxels of the map protocol (default 20000)")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else the CPU), cpu or cuda (default auto)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        args.protocols = check_choices([p.strip() for p in args.protocols.split(",") if p.strip()],
                                       PROTOCOLS, "--protocols")
    except InputError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    metric_rows, curve_rows = [], []
    for name in args.datasets:
        data = (phantom_data(make_phantom(args.n_genes, random_state=args.random_state))
                if name == "phantom" else celltype_data())
        for protocol in args.protocols:
            if protocol == "map" and data.phantom is None:
                logging.info("%s: no truth, map vs truth skipped", name)
                continue
            if protocol == "map":
                points = map_voxels_for_scoring(args.map_voxels, 30, args.random_state)
                jobs = [("map", lambda estimator: score_map(estimator, data, points))]
            else:
                jobs = [(split.name, lambda estimator, split=split: score_split(
                    estimator, data, split, random_state=args.random_state))
                        for split in site_splits(data, protocol, args)]
            for fold, run in jobs:
                for method, estimator in models(args, len(data.genes)).items():
                    table, fit_s = run(estimator)
                    for column, value in (("method", method), ("fold", fold), ("protocol", protocol),
                                          ("dataset", name)):
                        table.insert(0, column, value)
                    table["fit_s"] = fit_s
                    if isinstance(estimator, INRRegressor):
                        table["best_step"] = estimator.best_step_[0]
                        curves = history_frame(estimator)
                        for column, value in (("method", method), ("fold", fold),
                                              ("protocol", protocol), ("dataset", name)):
                            curves.insert(0, column, value)
                        curve_rows.append(curves)
                        pd.concat(curve_rows).to_csv(args.out_dir / "curves.csv", index=False)
                    metric_rows.append(table)
                    pd.concat(metric_rows).to_csv(args.out_dir / "metrics.csv", index=False)
                    means = table.groupby("target")["pearson"].mean().round(3).to_dict()
                    print(f"{name} {protocol} {fold} {method}: mean r {means}, fit {fit_s:.0f} s",
                          flush=True)
    metrics = pd.concat(metric_rows, ignore_index=True)
    if "best_step" not in metrics:
        metrics["best_step"] = np.nan
    summary = (metrics.groupby(["dataset", "protocol", "target", "method"], sort=False)
               .agg(pearson=("pearson", "mean"), r2=("r2", "mean"), folds=("fold", "nunique"),
                    fit_s=("fit_s", "mean"), best_step=("best_step", "mean"))
               .reset_index())
    summary.to_csv(args.out_dir / "summary.csv", index=False)
    print(machine_line(start))
    print(f"scale: protocols {','.join(args.protocols)}, phantom genes {args.n_genes}, "
          f"blocked folds / held-out donors run {args.max_folds} (from index {args.first_fold}; "
          f"{args.n_folds} blocked folds), {args.max_steps} steps, {args.pairs_per_step} (site, gene) "
          f"pairs per step, evaluation every {args.eval_every} steps")
    print(summary.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
