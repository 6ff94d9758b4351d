"""Benchmark of accuracy on held-out data: every interpolation method, side by side.

Runs :func:`brainexpr.workflows.benchmark.benchmark_methods` (the ``brainexpr benchmark``
command) on the phantom AHBA data (known truth) and the real cell-type fractions, under
spatially blocked K-fold, leave-one-donor-out, leave-parcels-out, leave-genes-out and
map-vs-truth protocols. The baselines (nearest sample, abagen-like kNN, kriging) are
measured in the same run as the INR designs and our donor-aware kriging, on the same
folds. Prints the headline table and the verdicts; all tables and figures are written to
``--out-dir``.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/heldout_accuracy.py \\
        --out-dir benchmarks/results/heldout_accuracy [--quick]

(One BLAS/torch thread per process: on a 2-core machine shared with other jobs, OpenBLAS
with 2 threads ran a 1,500 x 1,500 Cholesky 20 times slower than with one.)
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time

import pandas as pd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="benchmarks/results/heldout_accuracy")
    parser.add_argument("--quick", action="store_true", help="the CI-sized run (not for results)")
    parser.add_argument("--n-genes", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("brainexpr.evaluation.benchmark").setLevel(logging.INFO)

    import torch

    from brainexpr.reporting.benchmark import headline_table, verdict_table
    from brainexpr.workflows.benchmark import benchmark_methods

    start = time.perf_counter()
    result = benchmark_methods(out_dir=args.out_dir, quick=args.quick, n_genes=args.n_genes,
                               random_state=args.random_state)
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


if __name__ == "__main__":
    raise SystemExit(main())
