"""Fit and dense-map time of the models that ``model="auto"`` picks, next to the baselines.

``brainexpr fit``/``run`` default to donor kriging for sample sites and to the factorized INR
for parcel means (BENCHMARKS.md, "Package defaults"); ``parcel-kriging`` is the fast
alternative for parcel means. This script times, in one run and one process:

* sample level, the real 3,702 AHBA sites with their donors and tissue classes and
  ``--genes`` standard-normal value columns (the cost does not depend on the values):
  kNN (k = 10, abagen-like, the baseline), kriging and donor kriging;
* parcel level, the first ``--genes`` AD genes of the DK-83 table: parcel kriging;

fit time, then the prediction of every gene at every voxel of the 2 mm MNI152 brain mask
(grid built once, shared by all models), and for donor kriging and parcel kriging the
standard deviation of every gene there (their ``_std`` maps).

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_default_maps.py
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - started


def sample_rows(n_genes: int, grid) -> list[dict]:
    from brainexpr.models.registry import make_model
    from brainexpr.workflows.models import load_training_data

    data = load_training_data("celltypes")
    values = np.random.default_rng(0).normal(size=(len(data.coords), n_genes))
    rows = []
    for name in ("knn", "kriging", "donor-kriging"):
        model = make_model(name)
        extra = {"donors": data.donors} if name == "donor-kriging" else {}
        _, fit_s = timed(model.fit, data.coords, values, tissue=data.tissue, **extra)
        out, predict_s = timed(model.predict, grid.coords, grid.tissue)
        assert out.shape == (grid.n_voxels, n_genes) and np.isfinite(out).all()
        std_s = np.nan
        if name == "donor-kriging":  # the default's _std maps (kriging's exact SD is not timed)
            spread, std_s = timed(model.predict_std, grid.coords, grid.tissue)
            assert np.isfinite(spread).all()
        rows.append({"model": name, "data": f"{len(data.coords):,} sites", "fit_s": fit_s,
                     "predict_s": predict_s, "std_s": std_s})
        log(f"  {rows[-1]}")
    return rows


def parcel_rows(n_genes: int, grid) -> list[dict]:
    from brainexpr.models.registry import make_model
    from brainexpr.workflows.models import _tissue_image_for, load_training_data

    data = load_training_data("regional")
    table = data.values.iloc[:, :n_genes]
    model = make_model("parcel-kriging")
    _, fit_s = timed(model.fit_regions, data.atlas.image, table, regions=data.atlas.regions,
                     tissue_image=_tissue_image_for(data.atlas.image))
    out, predict_s = timed(model.predict, grid.coords, grid.tissue)
    assert out.shape == (grid.n_voxels, table.shape[1]) and np.isfinite(out).all()
    spread, std_s = timed(model.predict_std, grid.coords, grid.tissue)
    assert np.isfinite(spread).all()
    row = {"model": "parcel-kriging", "data": f"{len(table)} DK-83 parcels", "fit_s": fit_s,
           "predict_s": predict_s, "std_s": std_s}
    log(f"  {row}")
    return [row]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=100)
    args = parser.parse_args(argv)
    from brainexpr.maps import voxel_grid

    grid, grid_s = timed(voxel_grid, "brain", 2)
    rows = sample_rows(args.genes, grid) + parcel_rows(args.genes, grid)
    table = pd.DataFrame(rows)
    print(f"2 mm brain mask: {grid.n_voxels:,} voxels (grid {grid_s:.1f} s), "
          f"{args.genes} genes\n")
    print("| model | fitted on | fit (s) | 2 mm map of every gene (s) | 2 mm _std maps (s) |")
    print("|---|---|---|---|---|")
    for row in table.itertuples():
        std = "-" if not np.isfinite(row.std_s) else f"{row.std_s:.1f}"
        print(f"| {row.model} | {row.data} | {row.fit_s:.1f} | {row.predict_s:.1f} | {std} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
