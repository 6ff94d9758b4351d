"""Benchmark of accuracy on held-out data: every interpolation method, side by side.

Runs :func:`brainexpr.workflows.benchmark.benchmark_methods` (the ``brainexpr benchmark``
command) on the phantom AHBA data (known truth) and the real cell-type fractions, under
spatially blocked K-fold, leave-one-donor-out, leave-parcels-out, leave-genes-out and
map-vs-truth protocols. The baselines (nearest sample, abagen-like kNN, kriging) are
measured in the same run as the INR designs and our donor-aware kriging, on the same
folds. Prints the headline table and the verdicts; all tables and figures are written to
``--out-dir``.

The methods (``--methods``) are by default the package's default methods followed by the
two INR variants of ``benchmarks/inr_variants.py`` that ``brainexpr benchmark`` ran by
default while they were in the package (``residual-inr``, ``kriging+inr``): the methods
of the BENCHMARKS.md table, in the order of that run (the runner's random draws follow
the method order). Any method of :data:`brainexpr.evaluation.benchmark.METHODS` or of
``benchmarks/inr_variants.py`` (``inr-drift-kriging``) can be named.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/heldout_accuracy.py \\
        --out-dir benchmarks/results/heldout_accuracy [--quick]

(One BLAS/torch thread per process: on a 2-core machine shared with other jobs, OpenBLAS
with 2 threads ran a 1,500 x 1,500 Cholesky 20 times slower than with one.)

``--paper-steps N`` runs, instead, the longer check of the paper's configuration (12 x 512
SIREN, lr 1e-4, batches of 16 sites, up to N steps with early stopping on spatially
held-out blocks) on the first spatially blocked fold of the real cell types, next to kNN and
kriging on the same fold.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    import inr_variants
    from brainexpr.evaluation.benchmark import DEFAULT_METHODS, METHODS

    inr_variants.register()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS),
                        default=[*DEFAULT_METHODS, *inr_variants.HELDOUT_METHODS], metavar="METHOD",
                        help="methods to compare (default: the package defaults and "
                             f"{', '.join(inr_variants.HELDOUT_METHODS)})")
    parser.add_argument("--out-dir", default="benchmarks/results/heldout_accuracy")
    parser.add_argument("--quick", action="store_true", help="the CI-sized run (not for results)")
    parser.add_argument("--n-genes", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--paper-steps", type=int, default=None,
                        help="run only the long check of the paper's configuration, N steps at most")
    args = parser.parse_args(argv)
    if args.paper_steps:
        return paper_check(args.paper_steps, args.random_state)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("brainexpr.evaluation.benchmark").setLevel(logging.INFO)

    import torch

    from brainexpr.reporting.benchmark import headline_table, verdict_table
    from brainexpr.workflows.benchmark import benchmark_methods

    start = time.perf_counter()
    result = benchmark_methods(out_dir=args.out_dir, methods=args.methods, quick=args.quick,
                               n_genes=args.n_genes, random_state=args.random_state)
    wall = time.perf_counter() - start
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__}, CUDA: {torch.cuda.is_available()}, "
          f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"sites: {result.settings['sites']}, phantom genes: {result.settings['n_genes']}, "
          f"wall time {wall:.0f} s")
    print(headline_table(result).round(3).to_string(index=False))
    print()
    print(verdict_table(result).round(3).to_string(index=False))
    print()
    print(result.timings.round(1).to_string(index=False))
    return 0


def paper_check(max_steps: int, random_state: int) -> int:
    """The paper's configuration trained longer, on one blocked fold of the real cell types."""
    from brainexpr.evaluation.benchmark import celltype_data
    from brainexpr.evaluation.metrics import gene_metrics
    from brainexpr.evaluation.protocols import spatial_block_folds
    from brainexpr.models.baselines import KNNInterpolator, KrigingInterpolator
    from brainexpr.models.inr import INRRegressor

    data = celltype_data()
    values, coords, tissue = data.values.to_numpy(float), data.coords, data.tissue
    split = spatial_block_folds(coords, 5, 20.0, 8.0, random_state)[0]
    rows = []
    for name, model in (("knn", KNNInterpolator()), ("kriging", KrigingInterpolator(random_state=random_state)),
                        ("inr-paper", INRRegressor(design="paper", n_layers=12, hidden_features=512,
                                                   learning_rate=1e-4, max_steps=max_steps, batch_size=16,
                                                   eval_every=100, patience=5, random_state=random_state))):
        start = time.perf_counter()
        model.fit(coords[split.train], values[split.train], tissue=tissue[split.train])
        fit_s = time.perf_counter() - start
        prediction = np.asarray(model.predict(coords[split.test], tissue=tissue[split.test]), dtype=float)
        r = gene_metrics(prediction, values[split.test])["pearson"].mean()
        extra = ""
        if name == "inr-paper":
            extra = (f"best step {model.best_step_[0]}, validation MSE by step "
                     + ", ".join(f"{int(h[0])}: {h[2]:.3f}" for h in model.history_[0]))
        rows.append((name, round(float(r), 3), round(fit_s, 1), extra))
    print(f"real cell types, blocked fold 0 ({len(split.test)} held-out sites, {len(split.train)} training)")
    print(pd.DataFrame(rows, columns=["method", "mean r per cell type", "fit s", "notes"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
