"""Benchmark of the spatial nulls and of the default ``associate`` run.

Measures, in one run on the same machine:

1. time to generate 1,000 surrogates of an 86-region map (synthetic geometry: 86 random
   region centroids in a 120 mm cube, a smooth Gaussian random field) and of AD tau on the
   82 DK regions shared by the DK-83 atlas and the ADNI maps (centroid distances), for
   brainexpr's variogram and Moran nulls, the baseline plain permutation, and - when the
   ``brainsmash`` package is importable - the reference brainsmash implementation
   (``brainsmash.mapgen.base.Base``), which is not a dependency of brainexpr;
2. how well the surrogates keep the map's variogram (mean absolute error of the median
   surrogate variogram, relative to the permutation baseline);
3. false-positive rate at alpha = 0.05 for pairs of independent smooth maps: parametric
   p-value vs spatial-null p-values; and the same on the 68 cortical DK regions (smooth
   fields over the parcel centroids) with the spin test next to variogram and Moran, plus
   the time for 1,000 surrogates of each there;
4. the default ``brainexpr associate`` run (AD genes vs ADNI AD tau, cortex): wall time and
   the numbers next to the paper's.

Usage::

    .venv/bin/python benchmarks/spatial_nulls.py [--json results.json] [--pairs 100]
    PYTHONPATH=/path/to/brainsmash .venv/bin/python benchmarks/spatial_nulls.py  # + reference
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


def timed(function, repeats: int = 3):
    """Median wall time (s) of ``repeats`` calls and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def smooth_geometry(n_regions: int, seed: int = 0, length_mm: float = 30.0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 120, (n_regions, 3))
    distances = np.sqrt(np.square(points[:, None] - points[None]).sum(-1))
    cholesky = np.linalg.cholesky(np.exp(-distances / length_mm) + 1e-9 * np.eye(n_regions))
    return distances, cholesky


def surrogate_timings(values, distances, n_surrogates: int, with_reference: bool) -> dict:
    from brainexpr.analysis.nulls import generate_surrogates, variogram

    _, target = variogram(values, distances)
    rows = {}
    for method in ("permutation", "variogram", "moran"):
        seconds, surrogates = timed(lambda: generate_surrogates(
            values, distances, n_surrogates, method=method, random_state=0))
        _, curves = variogram(surrogates, distances)
        rows[method] = {"seconds": seconds,
                        "variogram_error": float(np.abs(np.median(curves, 0) - target).mean())}
    if with_reference:
        from brainsmash.mapgen.base import Base

        seconds, surrogates = timed(lambda: Base(values, distances, seed=0)(n_surrogates),
                                    repeats=1)
        _, curves = variogram(surrogates + values.mean(), distances)
        rows["brainsmash (reference)"] = {
            "seconds": seconds,
            "variogram_error": float(np.abs(np.median(curves, 0) - target).mean())}
    baseline = rows["permutation"]["variogram_error"]
    for row in rows.values():
        row["variogram_error_vs_permutation"] = row["variogram_error"] / baseline
    return rows


def false_positive_rates(n_pairs: int, n_surrogates: int, n_regions: int = 86) -> dict:
    from brainexpr.analysis.association import correlate_with_target

    distances, cholesky = smooth_geometry(n_regions, seed=1)
    index = pd.Index([f"region{i}" for i in range(n_regions)])
    rates = {"parametric": 0}
    for method in ("permutation", "variogram", "moran"):
        rates[method] = 0
    start = time.perf_counter()
    for seed in range(n_pairs):
        rng = np.random.default_rng(10_000 + seed)
        gene = pd.DataFrame({"gene": cholesky @ rng.standard_normal(n_regions)}, index=index)
        target = pd.Series(cholesky @ rng.standard_normal(n_regions), index=index)
        for method in ("permutation", "variogram", "moran"):
            table = correlate_with_target(gene, target, distances, null_method=method,
                                          n_surrogates=n_surrogates, random_state=seed)
            rates[method] += table["pearson_p_spatial"].iloc[0] < 0.05
        rates["parametric"] += table["pearson_p"].iloc[0] < 0.05
    out = {k: v / n_pairs for k, v in rates.items()}
    out["n_pairs"], out["n_surrogates"] = n_pairs, n_surrogates
    out["seconds"] = time.perf_counter() - start
    return out


def cortical_false_positive_rates(n_pairs: int, n_surrogates: int,
                                  length_mm: float = 30.0) -> dict:
    """FPR on the 68 cortical DK regions: spin (both assignments) vs variogram and Moran."""
    from brainexpr.analysis.association import (centroid_distances, correlate_with_target,
                                                parcel_centroids, select_regions)
    from brainexpr.analysis.nulls import generate_surrogates
    from brainexpr.datasets import load_atlas

    keys = select_regions("cortex")
    atlas = load_atlas("dk83")
    distances = centroid_distances(parcel_centroids(atlas.image, atlas.regions.loc[keys]))
    distances = distances.to_numpy()
    cholesky = np.linalg.cholesky(np.exp(-distances / length_mm) + 1e-9 * np.eye(len(keys)))
    index = pd.Index(keys)
    tests = {"variogram": {}, "moran": {}, "spin": {"regions": keys},
             "spin (nearest)": {"regions": keys, "assignment": "nearest"}}
    example = cholesky @ np.random.default_rng(0).standard_normal(len(keys))
    timings = {}
    for name, options in tests.items():
        method = name.split()[0]
        timings[name], _ = timed(lambda: generate_surrogates(
            example, distances, 1000, method=method, random_state=0, **options))
    rates = {"parametric": 0, **{name: 0 for name in tests}}
    start = time.perf_counter()
    for seed in range(n_pairs):
        rng = np.random.default_rng(20_000 + seed)
        gene = pd.DataFrame({"gene": cholesky @ rng.standard_normal(len(keys))}, index=index)
        target = pd.Series(cholesky @ rng.standard_normal(len(keys)), index=index)
        for name, options in tests.items():
            surrogates = generate_surrogates(target.to_numpy(), distances, n_surrogates,
                                             method=name.split()[0], random_state=seed,
                                             **options)
            table = correlate_with_target(gene, target, null_method=name.split()[0],
                                          surrogates=surrogates)
            rates[name] += table["pearson_p_spatial"].iloc[0] < 0.05
        rates["parametric"] += table["pearson_p"].iloc[0] < 0.05
    out = {k: v / n_pairs for k, v in rates.items()}
    out.update(n_pairs=n_pairs, n_surrogates=n_surrogates, length_mm=length_mm,
               seconds=time.perf_counter() - start,
               seconds_1000_surrogates=timings)
    return out


def default_run() -> dict:
    from brainexpr.workflows.associate import associate

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = associate(os.path.join(folder, "associate"))
        seconds = time.perf_counter() - start
    summary = result.summary
    source = summary["sources"]["abagen"]
    return {
        "seconds_with_figures": seconds,
        "regions": summary["regions"]["n"], "genes": source["n_genes"],
        "null": summary["null"],
        "p<0.05 parametric": source["pearson_p<0.05"],
        "q<0.05 parametric": source["pearson_q<0.05"],
        "p<0.05 spatial": source["pearson_p_spatial<0.05"],
        "q<0.05 spatial": source["pearson_q_spatial<0.05"],
        "significant_spatial_fdr": source["significant_spatial_fdr"],
        "strongest": source["strongest"],
        "axis_gradient": source["axis_gradient"],
        "open_targets_abs": source["open_targets"],
        "open_targets_signed": source["open_targets_other"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--pairs", type=int, default=100,
                        help="map pairs for the false-positive rates (default 100)")
    parser.add_argument("--n-surrogates", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        import brainsmash  # noqa: F401
        with_reference = True
    except ImportError:
        with_reference = False

    from brainexpr.analysis.association import (centroid_distances, parcel_centroids,
                                                select_regions)
    from brainexpr.datasets import load_atlas, load_pathology_map

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                          f"numpy {np.__version__}"}
    distances, cholesky = smooth_geometry(86)
    values = cholesky @ np.random.default_rng(0).standard_normal(86)
    results["synthetic_86"] = surrogate_timings(values, distances, args.n_surrogates,
                                                with_reference)
    atlas = load_atlas("dk83")
    keys = [k for k in select_regions("all") if k in atlas.regions.index]
    tau = load_pathology_map("tau", "ad")
    keys = [k for k in keys if k in tau.index]
    centroids = parcel_centroids(atlas.image, atlas.regions.loc[keys])
    results["ad_tau_82"] = surrogate_timings(tau.loc[keys].to_numpy(),
                                             centroid_distances(centroids).to_numpy(),
                                             args.n_surrogates, with_reference)
    results["false_positive_rate"] = false_positive_rates(args.pairs, 500)
    results["cortex_false_positive_rate"] = cortical_false_positive_rates(args.pairs, 500)
    results["default_associate_run"] = default_run()

    for name in ("synthetic_86", "ad_tau_82"):
        print(f"\n{name}: {args.n_surrogates} surrogates")
        print("| method | seconds | variogram error / permutation |")
        print("|---|---|---|")
        for method, row in results[name].items():
            ratio = row["variogram_error_vs_permutation"]
            print(f"| {method} | {row['seconds']:.3f} | {ratio:.2f} |")
    fpr = results["false_positive_rate"]
    print(f"\nfalse-positive rate at 0.05 ({fpr['n_pairs']} pairs of independent smooth "
          f"86-region maps, {fpr['n_surrogates']} surrogates):")
    for key in ("parametric", "permutation", "variogram", "moran"):
        print(f"  {key}: {fpr[key]:.3f}")
    cortex = results["cortex_false_positive_rate"]
    print(f"\n68 cortical DK regions ({cortex['n_pairs']} pairs of independent smooth maps, "
          f"{cortex['length_mm']:.0f} mm, {cortex['n_surrogates']} surrogates):")
    print("| test | false-positive rate | seconds for 1,000 surrogates |")
    print("|---|---|---|")
    for key in ("parametric", "variogram", "moran", "spin", "spin (nearest)"):
        seconds = cortex["seconds_1000_surrogates"].get(key)
        print(f"| {key} | {cortex[key]:.3f} | {'' if seconds is None else f'{seconds:.3f}'} |")
    print("\ndefault associate run:")
    print(json.dumps(results["default_associate_run"], indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
