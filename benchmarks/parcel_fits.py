"""Continuous maps from a regional table: block kriging vs the INR on held-out parcels.

Compares the fitters of a regional table (DK-83 parcels x genes) on what they did not see
(``benchmarks/parcel_scoring.py``):

a. real data, the 100 AD genes of the abagen DK-83 table: leave-parcels-out, 5 random
   folds of the 83 parcels and 5 folds of whole lobes (per hemisphere); per-gene Pearson r
   and R^2 across the held-out parcels, pooled over folds;
b. phantom data with known truth (:func:`brainexpr.evaluation.phantom.make_phantom`, 100
   genes, seed 0): leave-parcels-out on its true DK-83 parcel means, and the map fitted on
   all parcels (true means, or the abagen-style means of its noisy samples) scored against
   the true voxel fields inside the brain mask.

Methods: ``parcel-kriging`` (:class:`brainexpr.models.parcel.ParcelKrigingRegressor`,
defaults, plus two variants: with a tissue drift, without the brain-scale trend), ``inr``
(the factorized SIREN with the settings of ``brainexpr run``: 4 x 128, lr 1e-3, 1,500
steps, no validation split, one ensemble member), ``neighbour-average``, ``global-mean``
and, for maps, ``painted`` parcels.

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/parcel_fits.py --out benchmarks/results/parcel_fits.md

``--quick`` runs a smoke-test size (20 genes, 100 INR steps); ``--skip-inr`` leaves the
INR out.
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

KRIGING_VARIANTS = {
    "parcel-kriging": ("parcel-kriging", {}),
    "parcel-kriging + tissue drift": ("parcel-kriging", {"tissue_drift": True}),
    "parcel-kriging, local only (no trend)": ("parcel-kriging", {"trend_range": None}),
}


#: Parts of the comparison (``--parts``).
PARTS = ("real-random", "real-lobe", "phantom-parcels", "phantom-maps")


def _methods(skip_inr: bool, inr_only: bool) -> list[str]:
    if inr_only:
        return ["inr"]
    return list(KRIGING_VARIANTS) + ([] if skip_inr else ["inr"]) + ["neighbour-average",
                                                                    "global-mean"]


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    frame = frame.copy()
    names = [frame.index.name or "method"] + list(map(str, frame.columns))
    header = "| " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (frame.shape[1] + 1)]
    for name, row in frame.iterrows():
        cells = []
        for column, value in zip(frame.columns, row):
            if (column == "n_genes" or str(column).startswith("wins")) and np.isfinite(value):
                cells.append(str(int(value)))
            elif isinstance(value, (float, np.floating)):
                cells.append("-" if not np.isfinite(value) else f"{value:.{digits}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines)


def real_data(args, methods, inr_params, sections, gene_rows):
    import parcel_scoring as P
    from brainexpr.workflows.models import _tissue_image_for, load_training_data

    data = load_training_data(source="regional", gene_set="ad")
    values = data.values.iloc[:, :args.n_genes] if args.n_genes else data.values
    atlas = data.atlas
    tissue_image = _tissue_image_for(atlas.image)
    setup = P.parcel_setup(atlas.image, atlas.regions, values.index, tissue_image,
                           max_voxels=args.max_voxels, random_state=args.random_state)
    schemes = {
        "random": P.parcel_folds(values.index, 5, random_state=args.random_state),
        "lobe": P.parcel_folds(values.index, 5,
                               groups=P.lobe_groups(atlas.regions.loc[values.index]),
                               random_state=args.random_state),
    }
    params = dict(KRIGING_VARIANTS, inr=("inr", inr_params))
    for scheme, folds in schemes.items():
        if f"real-{scheme}" not in args.parts:
            continue
        logging.info("real data, %s folds", scheme)
        predictions, seconds = P.leave_parcels_out(values, setup, folds, methods, params)
        summary = P.summarise_scores(predictions, values, reference="inr" if "inr" in methods
                                     else None, seconds=seconds)
        summary.index.name = "method"
        sections.append((f"Real AHBA DK-83 table ({values.shape[1]} AD genes), leave-parcels-out, "
                         f"{scheme} folds (sizes {[len(t) for _, _, t in folds]})", summary))
        gene_rows.append(P.gene_scores(predictions, values).assign(
            dataset="real", protocol=f"parcels-{scheme}"))


def phantom_data(args, methods, inr_params, sections, gene_rows):
    from brainexpr.datasets import load_atlas
    import parcel_scoring as P
    from brainexpr.evaluation.benchmark import phantom_data as as_benchmark
    from brainexpr.evaluation.metrics import abagen_regional
    from brainexpr.evaluation.phantom import make_phantom
    from brainexpr.workflows.models import _tissue_image_for

    phantom = make_phantom(args.n_genes or 100, random_state=args.random_state)
    atlas = load_atlas("dk83")
    tissue_image = _tissue_image_for(atlas.image)
    truth_table = phantom.regional_truth().loc[[k for k in atlas.regions.index
                                                if k in phantom.regional_truth().index]]
    bench = as_benchmark(phantom)
    abagen = abagen_regional(bench.values.to_numpy(float), bench.donors, bench.regions)
    abagen.columns = truth_table.columns
    abagen = abagen.loc[[k for k in truth_table.index if k in abagen.index]]
    params = dict(KRIGING_VARIANTS, inr=("inr", inr_params))

    setup = P.parcel_setup(atlas.image, atlas.regions, truth_table.index, tissue_image,
                           max_voxels=args.max_voxels, random_state=args.random_state)
    if "phantom-parcels" in args.parts:
        folds = P.parcel_folds(truth_table.index, 5, random_state=args.random_state)
        logging.info("phantom, leave-parcels-out")
        predictions, seconds = P.leave_parcels_out(truth_table, setup, folds, methods, params)
        summary = P.summarise_scores(predictions, truth_table,
                                     reference="inr" if "inr" in methods else None,
                                     seconds=seconds)
        summary.index.name = "method"
        sections.append(("Phantom (seed 0), true DK-83 parcel means, leave-parcels-out, random "
                         "folds", summary))
        gene_rows.append(P.gene_scores(predictions, truth_table).assign(
            dataset="phantom", protocol="parcels-random"))
    if "phantom-maps" not in args.parts:
        return

    coords, tissue, label = P.map_points(atlas.image, n_points=args.map_points,
                                         random_state=args.random_state)
    truth = phantom.truth(coords)
    continuous = [m for m in methods if m in KRIGING_VARIANTS or m == "inr"]
    for name, table in (("true parcel means", truth_table), ("abagen-style sample means", abagen)):
        logging.info("phantom map from %s", name)
        rows, frames = {}, []
        for method in continuous + ["painted"]:
            start = time.perf_counter()
            if method == "painted":
                prediction = P.painted_map(table, atlas.regions, atlas.image, coords)
            else:
                kind, extra = params[method]
                model = P.fit_parcel_model(
                    kind, table, setup if table is truth_table else P.parcel_setup(
                        atlas.image, atlas.regions, table.index, tissue_image, max_voxels=10),
                    kriging_params=extra if kind != "inr" else None,
                    inr_params=extra if kind == "inr" else None)
                prediction = model.predict(coords, tissue=tissue)
            scores = P.score_map(prediction, truth, label)
            rows[method] = {**scores.mean().to_dict(), "median_r_all": scores["r_all"].median(),
                            "seconds": time.perf_counter() - start}
            frames.append(scores.assign(method=method, gene=list(truth_table.columns)))
        summary = pd.DataFrame.from_dict(rows, orient="index")
        summary.index.name = "method"
        sections.append((f"Phantom map fitted on all {len(table)} parcels ({name}) vs the true "
                         f"voxel fields: per-gene voxel r on {len(coords):,} random 2 mm "
                         f"brain-mask voxels ({int((label > 0).sum()):,} inside parcels)",
                         summary))
        long = pd.concat(frames, ignore_index=True).rename(columns={"r_all": "pearson"})
        gene_rows.append(long[["method", "gene", "pearson", "r_parcels", "r_outside"]].assign(
            dataset="phantom", protocol=f"map-{'truth' if table is truth_table else 'abagen'}"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/parcel_fits.md")
    parser.add_argument("--quick", action="store_true", help="smoke-test size (not for results)")
    parser.add_argument("--skip-inr", action="store_true")
    parser.add_argument("--inr-only", action="store_true",
                        help="only the INR (e.g. to check an ensemble, with --n-ensemble 3)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--n-genes", type=int, default=None)
    parser.add_argument("--inr-steps", type=int, default=1500)
    parser.add_argument("--n-ensemble", type=int, default=1)
    parser.add_argument("--max-voxels", type=int, default=1000,
                        help="evaluation voxels per held-out parcel")
    parser.add_argument("--map-points", type=int, default=60_000)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_genes, args.inr_steps, args.map_points = args.n_genes or 20, 100, 5000
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("brainexpr.models.inr", "brainexpr.models.parcel", "brainexpr.geneaxis"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import torch

    from brainexpr.utils import set_progress

    torch.set_num_threads(1)
    set_progress(False)
    inr_params = {"max_steps": args.inr_steps, "n_ensemble": args.n_ensemble,
                  "random_state": args.random_state, "device": "cpu"}
    methods = _methods(args.skip_inr, args.inr_only)
    sections, gene_rows = [], []
    start = time.perf_counter()
    if any(part.startswith("real") for part in args.parts):
        real_data(args, methods, inr_params, sections, gene_rows)
    if any(part.startswith("phantom") for part in args.parts):
        phantom_data(args, methods, inr_params, sections, gene_rows)
    wall = time.perf_counter() - start

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    genes_file = out.with_name(out.stem + "_genes.csv")
    pd.concat(gene_rows, ignore_index=True).to_csv(genes_file, index=False)
    command = ("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python "
               "benchmarks/parcel_fits.py " + " ".join(argv if argv is not None else
                                                       __import__("sys").argv[1:]))
    text = [f"# Continuous maps from a regional table: held-out comparison\n",
            f"Command: `{command.strip()}`  ",
            f"Wall time {wall / 60:.1f} min on {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores (one thread; shared machine), torch {torch.__version__}, "
            f"numpy {np.__version__}.  ",
            f"INR: factorized 4 x 128, lr 1e-3, {args.inr_steps} steps, validation_fraction 0, "
            f"n_ensemble {args.n_ensemble}, parcel_samples 32 (the `brainexpr run` settings); "
            "gene axis from the training parcels. Held-out parcel value = mean prediction over "
            f"at most {args.max_voxels} random voxels of the parcel (1 mm DK-83). Scores: mean / "
            "median over genes of the per-gene Pearson r and R^2 across the 83 held-out parcels "
            "(pooled over folds); `wins_vs_inr` = genes with higher r than the INR; `seconds` = "
            "fit + predict over all folds. Per-gene scores: "
            f"`{genes_file.as_posix()}`.\n"]
    for title, table in sections:
        text += [f"## {title}\n", _markdown(table), ""]
    out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
