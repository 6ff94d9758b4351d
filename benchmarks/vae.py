"""Benchmark of the cross-scale graph VAE (``brainexpr vae``).

Measures, in one run on the same machine:

1. the default problem (916 L1000 genes, 68 cortical regions, ADNI AD atrophy): wall time of
   ``fit_vae`` with its defaults (what ``brainexpr vae`` runs: in-sample fit, lobe-blocked
   CV, 100 variogram surrogates for the VAE and 1,000 for the PLS/ridge/PCA baselines,
   tables, checkpoint, figures) and the validation table next to the paper's numbers;
2. the same for the second built-in target, ADNI AD tau (AV1451);
3. the speed baseline of the spatial-null test: the VAE's blocked CV of a few surrogate
   maps done the naive way (one clone fitted per fold and surrogate) against the batched
   engine (all folds and surrogates in one training loop), seconds per surrogate;
4. a post-hoc sensitivity table (blocked-CV r of the VAE, no nulls) over a few settings
   and CV schemes; these numbers were *not* used to choose the defaults.

Usage::

    .venv/bin/python benchmarks/vae.py [--json benchmarks/results/vae.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import pandas as pd


def load_problem(target: str = "atrophy"):
    from brainexpr.analysis.graphs import region_graph
    from brainexpr.datasets import (load_gene_set, load_pathology_map, load_regional_expression,
                                    region_table)

    table = region_table()
    cortex = list(table.index[table["structure"] == "cortex"])
    expression = load_regional_expression()
    genes = [g for g in load_gene_set("l1000") if g in expression.columns]
    X = expression.loc[cortex, genes]
    y = load_pathology_map(target, "ad").loc[cortex]
    return X, y, region_graph(cortex, "atlas")


def default_run(target: str, quick: bool) -> dict:
    from brainexpr.workflows.vae import fit_vae

    options = dict(n_nulls=200, n_nulls_vae=10) if quick else {}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = fit_vae(out_dir=os.path.join(folder, "vae"), target=target, **options)
        wall = time.perf_counter() - start
    table = result.validation.table
    return {"target": result.summary["target"], "wall_s": round(wall, 1),
            "stages_s": result.summary["timings"], "options": options or "defaults",
            "table": table.round(4).reset_index().to_dict(orient="records")}


def null_speed(n_surrogates: int) -> dict:
    """Naive loop of clones vs batched engine for the VAE's blocked CV of surrogate maps."""
    from sklearn.base import clone

    from brainexpr.analysis.nulls import generate_surrogates
    from brainexpr.analysis.vulnerability import spatial_folds
    from brainexpr.datasets import load_region_distances
    from brainexpr.models.vae import GraphVAERegressor

    X, y, adjacency = load_problem()
    regions = list(X.index)
    distances = load_region_distances().loc[regions, regions].to_numpy()
    surrogates = generate_surrogates(y.to_numpy(), distances, n_surrogates, random_state=0).T
    folds = spatial_folds(regions, "lobe").to_numpy()
    values, graph = X.to_numpy(), adjacency.to_numpy()
    model = GraphVAERegressor()
    start = time.perf_counter()
    for k in range(n_surrogates):
        for group in pd.unique(folds):
            train = folds != group
            clone(model).fit(values[train], surrogates[train, k],
                             adjacency=graph[np.ix_(train, train)]).predict(values[~train])
    naive = (time.perf_counter() - start) / n_surrogates
    many = np.tile(surrogates, (1, max(1, 40 // n_surrogates)))
    start = time.perf_counter()
    model.cross_validated_predictions(values, many, folds, adjacency=graph)
    batched = (time.perf_counter() - start) / many.shape[1]
    return {"naive_s_per_surrogate": round(naive, 2),
            "batched_s_per_surrogate": round(batched, 3),
            "speedup": round(naive / batched, 1), "folds": int(len(pd.unique(folds))),
            "surrogates_naive": n_surrogates, "surrogates_batched": int(many.shape[1])}


def sensitivity() -> list[dict]:
    from brainexpr.analysis.vulnerability import (correlation, cross_validated_predictions,
                                                  r_squared, spatial_folds)
    from brainexpr.models.vae import GraphVAERegressor

    X, y, adjacency = load_problem()
    regions = list(X.index)
    target = y.to_numpy()[:, None]
    settings = [
        ("defaults", {}, "lobe"),
        ("graph_weight=0", {"graph_weight": 0.0}, "lobe"),
        ("graph_weight=1", {"graph_weight": 1.0}, "lobe"),
        ("prediction_weight=0.1", {"prediction_weight": 0.1}, "lobe"),
        ("n_components=3", {"n_components": 3}, "lobe"),
        ("n_components=12", {"n_components": 12}, "lobe"),
        ("seed 1", {"random_state": 1}, "lobe"),
        ("seed 2", {"random_state": 2}, "lobe"),
        ("defaults, cv=distance", {}, "distance"),
        ("defaults, cv=random", {}, "random"),
    ]
    rows = []
    for label, params, cv in settings:
        folds = spatial_folds(regions, cv).to_numpy()
        start = time.perf_counter()
        oof = cross_validated_predictions(GraphVAERegressor(**params), X.to_numpy(), target,
                                          folds, adjacency.to_numpy())
        rows.append({"setting": label, "cv": cv,
                     "cv_r": round(float(correlation(target, oof)[0]), 3),
                     "cv_r2": round(float(r_squared(target, oof)[0]), 3),
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--quick", action="store_true",
                        help="fewer surrogates (smoke test of this script)")
    args = parser.parse_args()
    import torch

    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                           "load_average_start": os.getloadavg()}}
    for target in ("atrophy", "tau"):
        results[f"default_{target}"] = run = default_run(target, args.quick)
        print(f"\n== brainexpr vae --target {target}: {run['wall_s']} s wall "
              f"(stages {run['stages_s']})")
        print(pd.DataFrame(run["table"]).set_index("model").to_string())
    results["null_speed"] = speed = null_speed(1 if args.quick else 2)
    print(f"\n== VAE blocked CV of surrogate maps: naive {speed['naive_s_per_surrogate']} s, "
          f"batched {speed['batched_s_per_surrogate']} s per surrogate "
          f"(x{speed['speedup']})")
    results["sensitivity"] = rows = sensitivity()
    print("\n== post-hoc sensitivity (AD atrophy, blocked-CV r of the VAE, no nulls)")
    print(pd.DataFrame(rows).to_string(index=False))
    results["machine"]["load_average_end"] = os.getloadavg()
    print(f"\nload average start {results['machine']['load_average_start']}, "
          f"end {results['machine']['load_average_end']}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, default=float)


if __name__ == "__main__":
    main()
